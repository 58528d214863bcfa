#!/usr/bin/python3
"""probe.py: transmute.so driven directly through the frei0r C API (ctypes),
as a host that constructs plug-ins only to probe them would.

    probe.py info PLUGIN                      plugin and parameter descriptions
    probe.py construct PLUGIN MODEL DEVICE    construct, read the defaults, set
                                              and read back every parameter,
                                              destruct
    probe.py update PLUGIN MODEL DEVICE       three updates of one instance
                                              that cannot work: the frames
                                              must pass through unchanged

Prints "ok - ..." lines, or "FAIL - ..." and exits 1. The caller checks
stderr: with a missing model or device, `update` prints one line and
`construct` nothing, as it loads nothing.
"""
import ctypes
import sys


class PluginInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("author", ctypes.c_char_p),
                ("plugin_type", ctypes.c_int), ("color_model", ctypes.c_int),
                ("frei0r_version", ctypes.c_int), ("major_version", ctypes.c_int),
                ("minor_version", ctypes.c_int), ("num_params", ctypes.c_int),
                ("explanation", ctypes.c_char_p)]


class ParamInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_int),
                ("explanation", ctypes.c_char_p)]


# frei0r.h: F0R_PARAM_DOUBLE 1, F0R_PARAM_STRING 4; FILTER 0; RGBA8888 1.
PARAMS = [("model", 4), ("blend", 1), ("domains", 4), ("device", 4),
          ("smoothing", 1), ("scene_cut", 1)]
DEFAULTS = {"model": "", "blend": 1.0, "domains": "", "device": "", "smoothing": 0.0,
            "scene_cut": 0.05}
failed = False


def check(cond, what):
    global failed
    print(("ok   - " if cond else "FAIL - ") + what, flush=True)
    failed |= not cond


def load(path):
    lib = ctypes.CDLL(path)
    lib.f0r_construct.restype = ctypes.c_void_p
    lib.f0r_construct.argtypes = [ctypes.c_uint, ctypes.c_uint]
    lib.f0r_destruct.argtypes = [ctypes.c_void_p]
    lib.f0r_set_param_value.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.f0r_get_param_value.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.f0r_update.argtypes = [ctypes.c_void_p, ctypes.c_double, ctypes.c_void_p,
                               ctypes.c_void_p]
    check(lib.f0r_init() == 1, "f0r_init")
    return lib


def set_param(lib, inst, index, value):
    if isinstance(value, str):
        s = ctypes.c_char_p(value.encode())  # the plug-in copies it
        lib.f0r_set_param_value(inst, ctypes.byref(s), index)
    else:
        lib.f0r_set_param_value(inst, ctypes.byref(ctypes.c_double(value)), index)


def get_param(lib, inst, index):
    if PARAMS[index][1] == 4:
        s = ctypes.c_char_p()
        lib.f0r_get_param_value(inst, ctypes.byref(s), index)
        return s.value.decode()
    d = ctypes.c_double()
    lib.f0r_get_param_value(inst, ctypes.byref(d), index)
    return d.value


def info(lib):
    pi = PluginInfo()
    lib.f0r_get_plugin_info(ctypes.byref(pi))
    check(pi.name == b"transmute" and pi.plugin_type == 0 and pi.color_model == 1
          and pi.frei0r_version == 1 and pi.num_params == len(PARAMS),
          "plugin info: transmute, filter, RGBA8888, frei0r 1, %d params" % pi.num_params)
    for i, (name, kind) in enumerate(PARAMS):
        p = ParamInfo()
        lib.f0r_get_param_info(ctypes.byref(p), i)
        check(p.name == name.encode() and p.type == kind and p.explanation,
              "param %d is %s, type %d" % (i, p.name.decode(), p.type))


def construct(lib, model, device):
    inst = lib.f0r_construct(64, 48)
    check(bool(inst), "f0r_construct")
    for i, (name, _) in enumerate(PARAMS):
        check(get_param(lib, inst, i) == DEFAULTS[name], "default %s" % name)
    values = [model, 0.25, "Blond_Hair", device, 0.5, 0.2]
    for i, v in enumerate(values):
        set_param(lib, inst, i, v)
    check([get_param(lib, inst, i) for i in range(len(PARAMS))] == values,
          "parameters read back as set")
    lib.f0r_destruct(inst)


def update(lib, model, device):
    w, h = 40, 24
    inst = lib.f0r_construct(w, h)
    set_param(lib, inst, 0, model)
    set_param(lib, inst, 3, device)
    for t in range(3):
        src = (ctypes.c_uint8 * (w * h * 4))(*[(i * 7 + t) % 256 for i in range(w * h * 4)])
        dst = (ctypes.c_uint8 * (w * h * 4))()
        lib.f0r_update(inst, t / 25.0, src, dst)
        check(bytes(dst) == bytes(src), "update %d passes the frame through" % t)
    lib.f0r_destruct(inst)


def main():
    what, lib = sys.argv[1], load(sys.argv[2])
    {"info": lambda: info(lib), "construct": lambda: construct(lib, *sys.argv[3:5]),
     "update": lambda: update(lib, *sys.argv[3:5])}[what]()
    lib.f0r_deinit()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
