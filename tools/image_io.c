/* image_io.c: PNG (libpng), JPEG (libjpeg) and PFM reading and writing. */
#include "image_io.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

/* ---- small helpers ------------------------------------------------------ */

static void seterr(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void seterr(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    int n = snprintf(err, errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    /* Keep it one line: libraries' messages may carry newlines. */
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

const char *img_format_name(enum img_format f)
{
    switch (f) {
    case IMG_PNG: return "png";
    case IMG_JPEG: return "jpg";
    case IMG_PFM: return "pfm";
    default: return "?";
    }
}

enum img_format img_format_from_name(const char *name)
{
    if (!name)
        return IMG_NONE;
    if (!strcasecmp(name, "png"))
        return IMG_PNG;
    if (!strcasecmp(name, "jpg") || !strcasecmp(name, "jpeg"))
        return IMG_JPEG;
    if (!strcasecmp(name, "pfm"))
        return IMG_PFM;
    return IMG_NONE;
}

enum img_format img_format_from_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return IMG_NONE;
    return img_format_from_name(dot + 1);
}

size_t img_sample_size(tm_sample_type t)
{
    return t == TM_U8 ? 1 : t == TM_U16 ? 2 : 4;
}

bool img_check_size(const char *name, long long w, long long h, char *err, size_t errlen)
{
    if (w <= 0 || h <= 0) {
        seterr(err, errlen, name, "empty image (%lldx%lld pixels)", w, h);
        return false;
    }
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || (unsigned long long)w * (unsigned long long)h > IMG_MAX_PIXELS) {
        seterr(err, errlen, name,
               "image too large (%lldx%lld; the limit is %d pixels per side and %llu pixels)",
               w, h, IMG_MAX_SIDE, IMG_MAX_PIXELS);
        return false;
    }
    return true;
}

int img_alloc(struct tm_image *im, int w, int h, int channels, tm_sample_type type)
{
    size_t n = (size_t)w * (size_t)h * (size_t)channels * img_sample_size(type);
    memset(im, 0, sizeof *im);
    im->data = calloc(n ? n : 1, 1);
    if (!im->data)
        return -1;
    im->width = w;
    im->height = h;
    im->channels = channels;
    im->type = type;
    im->stride = 0;
    return 0;
}

void img_free(struct tm_image *im)
{
    if (!im)
        return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

static size_t row_bytes(const struct tm_image *im)
{
    return (size_t)im->width * (size_t)im->channels * img_sample_size(im->type);
}

static size_t img_stride(const struct tm_image *im)
{
    return im->stride ? im->stride : row_bytes(im);
}

static float sample_get(const void *row, tm_sample_type t, size_t i)
{
    switch (t) {
    case TM_U8: return ((const uint8_t *)row)[i] / 255.0f;
    case TM_U16: return ((const uint16_t *)row)[i] / 65535.0f;
    default: return ((const float *)row)[i];
    }
}

int img_convert(const struct tm_image *src, tm_sample_type type, struct tm_image *dst)
{
    if (img_alloc(dst, src->width, src->height, src->channels, type))
        return -1;
    size_t n = (size_t)src->width * (size_t)src->channels;
    for (int y = 0; y < src->height; y++) {
        const uint8_t *srow = (const uint8_t *)src->data + (size_t)y * img_stride(src);
        uint8_t *drow = (uint8_t *)dst->data + (size_t)y * row_bytes(dst);
        for (size_t i = 0; i < n; i++) {
            if (src->type == TM_U8 && type == TM_U16) {
                ((uint16_t *)drow)[i] = (uint16_t)(srow[i] * 257u);
                continue;
            }
            if (src->type == type) {
                memcpy(drow + i * img_sample_size(type), srow + i * img_sample_size(type),
                       img_sample_size(type));
                continue;
            }
            float v = sample_get(srow, src->type, i);
            if (type == TM_F32) {
                ((float *)drow)[i] = v;
                continue;
            }
            if (!(v > 0.0f)) /* also NaN */
                v = 0.0f;
            if (v > 1.0f)
                v = 1.0f;
            if (type == TM_U8)
                drow[i] = (uint8_t)lrintf(v * 255.0f);
            else
                ((uint16_t *)drow)[i] = (uint16_t)lrintf(v * 65535.0f);
        }
    }
    return 0;
}

/* ---- atomic output files -------------------------------------------------- */

struct atomic_out {
    FILE *f;
    char *tmp;
};

static int atomic_open(struct atomic_out *ao, const char *path, char *err, size_t errlen)
{
    ao->f = NULL;
    ao->tmp = NULL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dirlen = slash ? (int)(slash - path) : 1;
    const char *dir = slash ? path : ".";
    if (slash && dirlen == 0) { /* "/name" */
        dir = "/";
        dirlen = 1;
    }
    if (!*base) {
        seterr(err, errlen, path, "not a file name");
        return -1;
    }
    size_t n = (size_t)dirlen + strlen(base) + 16;
    ao->tmp = malloc(n);
    if (!ao->tmp) {
        seterr(err, errlen, path, "out of memory");
        return -1;
    }
    snprintf(ao->tmp, n, "%.*s%s.%s.XXXXXX", dirlen, dir,
             (dirlen == 1 && dir[0] == '/') ? "" : "/", base);
    int fd = mkstemp(ao->tmp);
    if (fd < 0) {
        int e = errno;
        seterr(err, errlen, path, "cannot create a file in '%.*s': %s", dirlen, dir, strerror(e));
        free(ao->tmp);
        ao->tmp = NULL;
        return -1;
    }
    /* mkstemp makes 0600; give the file the usual 0666 & ~umask. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask)) {
        /* not fatal */
    }
    ao->f = fdopen(fd, "wb");
    if (!ao->f) {
        int e = errno;
        close(fd);
        unlink(ao->tmp);
        free(ao->tmp);
        ao->tmp = NULL;
        seterr(err, errlen, path, "cannot open the temporary file: %s", strerror(e));
        return -1;
    }
    return 0;
}

static void atomic_abort(struct atomic_out *ao)
{
    if (ao->f)
        fclose(ao->f);
    if (ao->tmp) {
        unlink(ao->tmp);
        free(ao->tmp);
    }
    ao->f = NULL;
    ao->tmp = NULL;
}

static int atomic_commit(struct atomic_out *ao, const char *path, char *err, size_t errlen)
{
    int e = 0;
    if (fflush(ao->f) != 0 || ferror(ao->f))
        e = errno ? errno : EIO;
    if (!e && fsync(fileno(ao->f)) != 0)
        e = errno;
    int rc = fclose(ao->f);
    ao->f = NULL;
    if (!e && rc != 0)
        e = errno ? errno : EIO;
    if (e) {
        seterr(err, errlen, path, "write failed: %s", strerror(e));
        atomic_abort(ao);
        return -1;
    }
    if (rename(ao->tmp, path) != 0) {
        e = errno;
        seterr(err, errlen, path, "cannot rename the temporary file into place: %s", strerror(e));
        atomic_abort(ao);
        return -1;
    }
    /* Make the rename durable too (best effort). */
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (slash && (size_t)(slash - path) < sizeof dir) {
        size_t dl = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, dl);
        dir[dl] = '\0';
    } else {
        strcpy(dir, ".");
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(ao->tmp);
    ao->tmp = NULL;
    return 0;
}

/* ---- PNG ------------------------------------------------------------------ */

struct png_io {
    FILE *f;
    jmp_buf jb;
    char msg[200];
    bool truncated;
    bool io_error;
};

static void png_err_fn(png_structp png, png_const_charp msg)
{
    struct png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg);
    longjmp(io->jb, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* ancillary-chunk trouble: libpng recovers, so do we */
}

static void png_read_fn(png_structp png, png_bytep data, size_t len)
{
    struct png_io *io = png_get_io_ptr(png);
    size_t got = fread(data, 1, len, io->f);
    if (got != len) {
        if (ferror(io->f))
            io->io_error = true;
        else
            io->truncated = true;
        png_error(png, "unexpected end of file");
    }
}

struct png_rd {
    struct png_io io;
    const char *path;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    struct tm_image im;
    char *err;
    size_t errlen;
};

static int png_read_inner(struct png_rd *r)
{
    if (setjmp(r->io.jb)) {
        if (r->io.truncated)
            seterr(r->err, r->errlen, r->path, "truncated PNG file");
        else if (r->io.io_error)
            seterr(r->err, r->errlen, r->path, "read error: %s", strerror(errno));
        else
            seterr(r->err, r->errlen, r->path, "corrupt PNG: %s", r->io.msg);
        return -1;
    }
    png_read_info(r->png, r->info);
    png_uint_32 w = png_get_image_width(r->png, r->info);
    png_uint_32 h = png_get_image_height(r->png, r->info);
    if (!img_check_size(r->path, w, h, r->err, r->errlen))
        return -1;
    int color = png_get_color_type(r->png, r->info);
    int depth = png_get_bit_depth(r->png, r->info);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(r->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(r->png);
    if (png_get_valid(r->png, r->info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(r->png);
    if (depth == 16 && host_little_endian())
        png_set_swap(r->png);
    png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    int ch = png_get_channels(r->png, r->info);
    int od = png_get_bit_depth(r->png, r->info);
    if (ch < 1 || ch > 4 || (od != 8 && od != 16)) {
        seterr(r->err, r->errlen, r->path, "unsupported PNG layout (%d channels, %d bits)", ch, od);
        return -1;
    }
    if (img_alloc(&r->im, (int)w, (int)h, ch, od == 16 ? TM_U16 : TM_U8)) {
        seterr(r->err, r->errlen, r->path, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
        return -1;
    }
    size_t rb = row_bytes(&r->im);
    if (png_get_rowbytes(r->png, r->info) != rb) {
        seterr(r->err, r->errlen, r->path, "unexpected PNG row size");
        return -1;
    }
    r->rows = malloc(sizeof *r->rows * h);
    if (!r->rows) {
        seterr(r->err, r->errlen, r->path, "out of memory");
        return -1;
    }
    for (png_uint_32 y = 0; y < h; y++)
        r->rows[y] = (png_bytep)r->im.data + (size_t)y * rb;
    png_read_image(r->png, r->rows);
    /* Reading to IEND makes a file cut after its last IDAT an error too. */
    png_read_end(r->png, NULL);
    return 0;
}

static int png_load(FILE *f, const char *path, struct tm_image *out, char *err, size_t errlen)
{
    struct png_rd *r = calloc(1, sizeof *r);
    if (!r) {
        seterr(err, errlen, path, "out of memory");
        return -1;
    }
    r->io.f = f;
    r->path = path;
    r->err = err;
    r->errlen = errlen;

    /* Look at IHDR first so a 0x0 or absurd header gets a plain message. */
    unsigned char hdr[24];
    size_t got = fread(hdr, 1, sizeof hdr, f);
    if (got < sizeof hdr) {
        seterr(err, errlen, path, "truncated PNG file");
        free(r);
        return -1;
    }
    if (memcmp(hdr + 12, "IHDR", 4) != 0) {
        seterr(err, errlen, path, "corrupt PNG: no IHDR chunk");
        free(r);
        return -1;
    }
    unsigned long long w = ((unsigned long long)hdr[16] << 24) | (hdr[17] << 16) | (hdr[18] << 8) | hdr[19];
    unsigned long long h = ((unsigned long long)hdr[20] << 24) | (hdr[21] << 16) | (hdr[22] << 8) | hdr[23];
    if (!img_check_size(path, (long long)w, (long long)h, err, errlen)) {
        free(r);
        return -1;
    }
    rewind(f);

    int rc = -1;
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r->io, png_err_fn, png_warn_fn);
    if (r->png)
        r->info = png_create_info_struct(r->png);
    if (!r->png || !r->info) {
        seterr(err, errlen, path, "out of memory");
    } else {
        png_set_read_fn(r->png, &r->io, png_read_fn);
        png_set_user_limits(r->png, IMG_MAX_SIDE, IMG_MAX_SIDE);
        rc = png_read_inner(r);
    }
    if (r->png)
        png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
    free(r->rows);
    if (rc == 0)
        *out = r->im;
    else
        img_free(&r->im);
    free(r);
    return rc;
}

struct png_wr {
    struct png_io io;
    const char *path;
    png_structp png;
    png_infop info;
    const struct tm_image *im;
    char *err;
    size_t errlen;
};

static void png_write_fn(png_structp png, png_bytep data, size_t len)
{
    struct png_io *io = png_get_io_ptr(png);
    if (fwrite(data, 1, len, io->f) != len) {
        io->io_error = true;
        png_error(png, "write error");
    }
}

static void png_flush_fn(png_structp png)
{
    (void)png;
}

static int png_write_inner(struct png_wr *w)
{
    if (setjmp(w->io.jb)) {
        if (w->io.io_error)
            seterr(w->err, w->errlen, w->path, "write failed: %s", strerror(errno));
        else
            seterr(w->err, w->errlen, w->path, "PNG encoding failed: %s", w->io.msg);
        return -1;
    }
    const struct tm_image *im = w->im;
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_write_fn(w->png, &w->io, png_write_fn, png_flush_fn);
    png_set_IHDR(w->png, w->info, (png_uint_32)im->width, (png_uint_32)im->height,
                 im->type == TM_U16 ? 16 : 8, types[im->channels - 1], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(w->png, w->info);
    if (im->type == TM_U16 && host_little_endian())
        png_set_swap(w->png);
    for (int y = 0; y < im->height; y++)
        png_write_row(w->png, (png_const_bytep)im->data + (size_t)y * img_stride(im));
    png_write_end(w->png, NULL);
    return 0;
}

static int png_save(FILE *f, const char *path, const struct tm_image *im, char *err, size_t errlen)
{
    struct png_wr *w = calloc(1, sizeof *w);
    if (!w) {
        seterr(err, errlen, path, "out of memory");
        return -1;
    }
    w->io.f = f;
    w->path = path;
    w->im = im;
    w->err = err;
    w->errlen = errlen;
    int rc = -1;
    w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w->io, png_err_fn, png_warn_fn);
    if (w->png)
        w->info = png_create_info_struct(w->png);
    if (!w->png || !w->info)
        seterr(err, errlen, path, "out of memory");
    else
        rc = png_write_inner(w);
    if (w->png)
        png_destroy_write_struct(&w->png, w->info ? &w->info : NULL);
    free(w);
    return rc;
}

/* ---- JPEG ----------------------------------------------------------------- */

struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    bool eof; /* the data ended early */
};

static void jpeg_error_exit_fn(j_common_ptr cinfo)
{
    struct jpeg_err *je = (struct jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, je->msg);
    longjmp(je->jb, 1);
}

/* Warnings that mean the image data is damaged or cut short are errors:
 * libjpeg would otherwise hand back a partly gray image. */
static void jpeg_emit_message_fn(j_common_ptr cinfo, int level)
{
    struct jpeg_err *je = (struct jpeg_err *)cinfo->err;
    if (level >= 0)
        return; /* trace messages */
    int code = cinfo->err->msg_code;
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM)
        return; /* harmless and common */
    cinfo->err->num_warnings++;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)
        je->eof = true;
    (*cinfo->err->format_message)(cinfo, je->msg);
    longjmp(je->jb, 1);
}

struct jpeg_rd {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err jerr;
    bool created;
    struct tm_image im;
    const char *path;
    char *err;
    size_t errlen;
};

static int jpeg_read_inner(struct jpeg_rd *r, FILE *f)
{
    if (setjmp(r->jerr.jb)) {
        if (r->jerr.eof)
            seterr(r->err, r->errlen, r->path, "truncated JPEG file (%s)", r->jerr.msg);
        else
            seterr(r->err, r->errlen, r->path, "corrupt JPEG: %s", r->jerr.msg);
        return -1;
    }
    jpeg_create_decompress(&r->cinfo);
    r->created = true;
    jpeg_stdio_src(&r->cinfo, f);
    jpeg_read_header(&r->cinfo, TRUE);
    if (!img_check_size(r->path, r->cinfo.image_width, r->cinfo.image_height, r->err, r->errlen))
        return -1;
    switch (r->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        r->cinfo.out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        r->cinfo.out_color_space = JCS_RGB;
        break;
    default:
        seterr(r->err, r->errlen, r->path, "unsupported JPEG color space (CMYK or YCCK)");
        return -1;
    }
    jpeg_start_decompress(&r->cinfo);
    int ch = r->cinfo.output_components;
    if (ch != 1 && ch != 3) {
        seterr(r->err, r->errlen, r->path, "unsupported JPEG with %d components", ch);
        return -1;
    }
    if (img_alloc(&r->im, (int)r->cinfo.output_width, (int)r->cinfo.output_height, ch, TM_U8)) {
        seterr(r->err, r->errlen, r->path, "out of memory");
        return -1;
    }
    size_t rb = row_bytes(&r->im);
    while (r->cinfo.output_scanline < r->cinfo.output_height) {
        JSAMPROW row = (JSAMPROW)r->im.data + (size_t)r->cinfo.output_scanline * rb;
        if (jpeg_read_scanlines(&r->cinfo, &row, 1) != 1) {
            seterr(r->err, r->errlen, r->path, "truncated JPEG file");
            return -1;
        }
    }
    jpeg_finish_decompress(&r->cinfo);
    return 0;
}

static int jpeg_load(FILE *f, const char *path, struct tm_image *out, char *err, size_t errlen)
{
    struct jpeg_rd *r = calloc(1, sizeof *r);
    if (!r) {
        seterr(err, errlen, path, "out of memory");
        return -1;
    }
    r->path = path;
    r->err = err;
    r->errlen = errlen;
    r->cinfo.err = jpeg_std_error(&r->jerr.pub);
    r->jerr.pub.error_exit = jpeg_error_exit_fn;
    r->jerr.pub.emit_message = jpeg_emit_message_fn;
    int rc = jpeg_read_inner(r, f);
    if (r->created)
        jpeg_destroy_decompress(&r->cinfo);
    if (rc == 0)
        *out = r->im;
    else
        img_free(&r->im);
    free(r);
    return rc;
}

struct jpeg_wr {
    struct jpeg_compress_struct cinfo;
    struct jpeg_err jerr;
    bool created;
    const char *path;
    char *err;
    size_t errlen;
};

static int jpeg_write_inner(struct jpeg_wr *w, FILE *f, const struct tm_image *im, int quality)
{
    if (setjmp(w->jerr.jb)) {
        seterr(w->err, w->errlen, w->path, "JPEG encoding failed: %s", w->jerr.msg);
        return -1;
    }
    jpeg_create_compress(&w->cinfo);
    w->created = true;
    jpeg_stdio_dest(&w->cinfo, f);
    w->cinfo.image_width = (JDIMENSION)im->width;
    w->cinfo.image_height = (JDIMENSION)im->height;
    w->cinfo.input_components = im->channels;
    w->cinfo.in_color_space = im->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&w->cinfo);
    jpeg_set_quality(&w->cinfo, quality, TRUE);
    jpeg_start_compress(&w->cinfo, TRUE);
    while (w->cinfo.next_scanline < w->cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)im->data + (size_t)w->cinfo.next_scanline * img_stride(im);
        jpeg_write_scanlines(&w->cinfo, &row, 1);
    }
    jpeg_finish_compress(&w->cinfo);
    return 0;
}

static int jpeg_save(FILE *f, const char *path, const struct tm_image *im, int quality, char *err,
                     size_t errlen)
{
    struct jpeg_wr *w = calloc(1, sizeof *w);
    if (!w) {
        seterr(err, errlen, path, "out of memory");
        return -1;
    }
    w->path = path;
    w->err = err;
    w->errlen = errlen;
    w->cinfo.err = jpeg_std_error(&w->jerr.pub);
    w->jerr.pub.error_exit = jpeg_error_exit_fn;
    int rc = jpeg_write_inner(w, f, im, quality);
    if (w->created)
        jpeg_destroy_compress(&w->cinfo);
    free(w);
    return rc;
}

/* ---- PFM ------------------------------------------------------------------ */

/* Reads one whitespace-separated token of at most len-1 bytes. Returns the
 * character that ended it (EOF when the file ended). */
static int pfm_token(FILE *f, char *tok, size_t len)
{
    int c;
    do
        c = fgetc(f);
    while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
    size_t n = 0;
    while (c != EOF && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
        if (n + 1 >= len)
            return EOF;
        tok[n++] = (char)c;
        c = fgetc(f);
    }
    tok[n] = '\0';
    return n ? c : EOF;
}

static void swap32(void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        uint8_t t = b[0];
        b[0] = b[3];
        b[3] = t;
        t = b[1];
        b[1] = b[2];
        b[2] = t;
    }
}

static int pfm_load(FILE *f, const char *path, struct tm_image *out, char *err, size_t errlen)
{
    char tok[64];
    int ch;
    if (pfm_token(f, tok, sizeof tok) == EOF || (strcmp(tok, "PF") && strcmp(tok, "Pf"))) {
        seterr(err, errlen, path, "corrupt PFM header");
        return -1;
    }
    ch = tok[1] == 'F' ? 3 : 1;
    long long dims[2];
    for (int i = 0; i < 2; i++) {
        char *end;
        if (pfm_token(f, tok, sizeof tok) == EOF) {
            seterr(err, errlen, path, "corrupt PFM header");
            return -1;
        }
        errno = 0;
        dims[i] = strtoll(tok, &end, 10);
        if (*end || errno || tok[0] == '-' || tok[0] == '+') {
            seterr(err, errlen, path, "corrupt PFM header (bad size '%s')", tok);
            return -1;
        }
    }
    int last = pfm_token(f, tok, sizeof tok);
    char *end;
    double scale = last == EOF ? 0.0 : strtod(tok, &end);
    if (last == EOF || *end || !(scale != 0.0) || !isfinite(scale)) {
        seterr(err, errlen, path, "corrupt PFM header (bad scale)");
        return -1;
    }
    /* The token ended with exactly one whitespace character; data follows. */
    if (!img_check_size(path, dims[0], dims[1], err, errlen))
        return -1;
    int w = (int)dims[0], h = (int)dims[1];
    if (img_alloc(out, w, h, ch, TM_F32)) {
        seterr(err, errlen, path, "out of memory");
        return -1;
    }
    size_t rb = row_bytes(out);
    bool swap = (scale < 0) != host_little_endian();
    for (int y = h - 1; y >= 0; y--) { /* rows are stored bottom to top */
        uint8_t *row = (uint8_t *)out->data + (size_t)y * rb;
        if (fread(row, 1, rb, f) != rb) {
            if (ferror(f))
                seterr(err, errlen, path, "read error: %s", strerror(errno));
            else
                seterr(err, errlen, path, "truncated PFM file (%d of %d rows)", h - 1 - y, h);
            img_free(out);
            return -1;
        }
        if (swap)
            swap32(row, (size_t)w * ch);
    }
    return 0;
}

static int pfm_save(FILE *f, const struct tm_image *im)
{
    if (fprintf(f, "%s\n%d %d\n%s\n", im->channels == 3 ? "PF" : "Pf", im->width, im->height,
                host_little_endian() ? "-1.0" : "1.0") < 0)
        return -1;
    size_t rb = row_bytes(im);
    for (int y = im->height - 1; y >= 0; y--)
        if (fwrite((const uint8_t *)im->data + (size_t)y * img_stride(im), 1, rb, f) != rb)
            return -1;
    return 0;
}

/* ---- entry points --------------------------------------------------------- */

int img_load(const char *path, struct tm_image *out, enum img_format *fmt, char *err,
             size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (fmt)
        *fmt = IMG_NONE;
    FILE *f = fopen(path, "rb");
    if (!f) {
        seterr(err, errlen, path, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        seterr(err, errlen, path, "is a directory");
        fclose(f);
        return -1;
    }
    unsigned char magic[8];
    size_t n = fread(magic, 1, sizeof magic, f);
    if (n == 0 && ferror(f)) {
        seterr(err, errlen, path, "read error: %s", strerror(errno));
        fclose(f);
        return -1;
    }
    rewind(f);
    enum img_format found = IMG_NONE;
    if (n == 0) {
        seterr(err, errlen, path, "empty file");
        fclose(f);
        return -1;
    }
    if (n >= 8 && !memcmp(magic, "\x89PNG\r\n\x1a\n", 8))
        found = IMG_PNG;
    else if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF)
        found = IMG_JPEG;
    else if (n >= 3 && magic[0] == 'P' && (magic[1] == 'F' || magic[1] == 'f') &&
             (magic[2] == '\n' || magic[2] == ' ' || magic[2] == '\r' || magic[2] == '\t'))
        found = IMG_PFM;
    int rc;
    switch (found) {
    case IMG_PNG: rc = png_load(f, path, out, err, errlen); break;
    case IMG_JPEG: rc = jpeg_load(f, path, out, err, errlen); break;
    case IMG_PFM: rc = pfm_load(f, path, out, err, errlen); break;
    default:
        seterr(err, errlen, path, "not a PNG, JPEG or PFM image");
        rc = -1;
    }
    fclose(f);
    if (rc == 0 && fmt)
        *fmt = found;
    return rc;
}

int img_save(const char *path, enum img_format fmt, const struct tm_image *im,
             const struct img_save_opts *opts, char *err, size_t errlen)
{
    if (!im || !im->data || im->channels < 1 || im->channels > 4) {
        seterr(err, errlen, path, "invalid image to save");
        return -1;
    }
    if (!img_check_size(path, im->width, im->height, err, errlen))
        return -1;
    if (fmt == IMG_NONE) {
        seterr(err, errlen, path, "unknown output format (use .png, .jpg or .pfm)");
        return -1;
    }
    if ((fmt == IMG_JPEG || fmt == IMG_PFM) && im->channels != 1 && im->channels != 3) {
        seterr(err, errlen, path, "%s holds 1 or 3 channels, not %d", fmt == IMG_JPEG ? "JPEG" : "PFM",
               im->channels);
        return -1;
    }
    int quality = opts && opts->jpeg_quality ? opts->jpeg_quality : IMG_JPEG_QUALITY_DEFAULT;
    if (quality < 1 || quality > 100) {
        seterr(err, errlen, path, "JPEG quality %d is not in 1..100", quality);
        return -1;
    }

    /* Convert the sample type when the format needs it. */
    tm_sample_type want = im->type;
    if (fmt == IMG_PNG && im->type == TM_F32)
        want = TM_U16;
    else if (fmt == IMG_JPEG)
        want = TM_U8;
    else if (fmt == IMG_PFM)
        want = TM_F32;
    struct tm_image conv = {0};
    const struct tm_image *src = im;
    if (want != im->type) {
        if (img_convert(im, want, &conv)) {
            seterr(err, errlen, path, "out of memory");
            return -1;
        }
        src = &conv;
    }

    struct atomic_out ao;
    int rc = atomic_open(&ao, path, err, errlen);
    if (rc == 0) {
        switch (fmt) {
        case IMG_PNG: rc = png_save(ao.f, path, src, err, errlen); break;
        case IMG_JPEG: rc = jpeg_save(ao.f, path, src, quality, err, errlen); break;
        default:
            rc = pfm_save(ao.f, src);
            if (rc)
                seterr(err, errlen, path, "write failed: %s", strerror(errno));
        }
        if (rc == 0)
            rc = atomic_commit(&ao, path, err, errlen);
        else
            atomic_abort(&ao);
    }
    img_free(&conv);
    return rc;
}
