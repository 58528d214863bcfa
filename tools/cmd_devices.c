/* cmd_devices.c: `transmute devices`. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 64

static const char devices_help[] =
    "Usage: transmute devices [OPTIONS]\n"
    "\n"
    "Lists the CPU backend and every Vulkan device: index, kind, name, driver and\n"
    "memory (the largest device-local heap; host RAM for the CPU). The device the\n"
    "selector would pick is marked with '*'. Without --device the selector is\n"
    "TRANSMUTE_DEVICE, else automatic: the best Vulkan GPU (discrete, then\n"
    "integrated, then virtual), else the CPU; software Vulkan devices such as\n"
    "llvmpipe are only used when asked for.\n"
    "\n"
    "Options:\n"
    "  -d, --device SEL  show what SEL picks: cpu, vulkan, a Vulkan device index,\n"
    "                    or part of a device name\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exits 1 when the selector matches no device.\n";

static const char *kind_name(tm_device_kind k)
{
    switch (k) {
    case TM_DEVICE_CPU: return "cpu";
    case TM_DEVICE_VK_DISCRETE: return "discrete";
    case TM_DEVICE_VK_INTEGRATED: return "integrated";
    case TM_DEVICE_VK_VIRTUAL: return "virtual";
    case TM_DEVICE_VK_SOFTWARE: return "software";
    default: return "other";
    }
}

int cmd_devices(int argc, char **argv)
{
    static const struct option opts[] = {
        {"device", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *device = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': device = optarg; break;
        case 'h': fputs(devices_help, stdout); return EXIT_OK;
        case ':':
            cli_usage_error("devices", "option '%s' needs an argument", argv[optind - 1]);
        default:
            if (optopt)
                cli_usage_error("devices", "unknown option '-%c'", optopt);
            cli_usage_error("devices", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        cli_usage_error("devices", "unexpected argument '%s'", argv[optind]);

    struct tm_device_info *list = xcalloc(MAX_DEVICES, sizeof *list);
    int count = 0, picked = -1;
    char err[512] = "";
    tm_status st = tm_devices_list(device, list, MAX_DEVICES, &count, &picked, err, sizeof err);
    if (st != TM_OK && count <= 0) {
        cli_err("%s", err[0] ? err : tm_status_str(st));
        free(list);
        return EXIT_FAIL;
    }
    int shown = count < MAX_DEVICES ? count : MAX_DEVICES;
    printf("  %-5s %-10s %-40s %-10s %s\n", "index", "kind", "name", "memory", "driver");
    for (int i = 0; i < shown; i++) {
        const struct tm_device_info *d = &list[i];
        char idx[16], mem[32];
        if (d->kind == TM_DEVICE_CPU)
            snprintf(idx, sizeof idx, "cpu");
        else
            snprintf(idx, sizeof idx, "%d", d->index);
        printf("%c %-5s %-10s %-40s %-10s %s\n", i == picked ? '*' : ' ', idx, kind_name(d->kind),
               d->name, cli_human_bytes(d->memory, mem, sizeof mem), d->driver);
    }
    if (count > shown)
        printf("  (%d more not shown)\n", count - shown);
    if (count <= 1)
        printf("No Vulkan device found.\n");
    int rc = EXIT_OK;
    if (picked >= 0 && picked < shown) {
        printf("* picked%s%s%s: %s\n", device ? " by --device '" : "", device ? device : "",
               device ? "'" : (getenv("TRANSMUTE_DEVICE") && *getenv("TRANSMUTE_DEVICE")
                                   ? " by TRANSMUTE_DEVICE"
                                   : " automatically"),
               list[picked].name);
    } else {
        cli_err("%s", err[0] ? err : "the selector matches no device");
        rc = EXIT_FAIL;
    }
    free(list);
    return rc;
}
