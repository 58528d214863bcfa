/*
 * vf_transmute.c: the `transmute` video filter, GAN image-to-image
 * translation (CycleGAN, pix2pix, StarGAN generators) and super-resolution
 * (ESRGAN, SRGAN, layer graphs) through libtransmute. A super-resolution
 * model's output frames are its scale times the input's size; blend, which
 * mixes with the input, is refused there (the input has another size).
 *
 * Part of Transmute (MIT license); filters/ffmpeg/build-ffmpeg.sh copies it
 * into FFmpeg 5.1's libavfilter/ and links libtransmute.
 *
 * The model runs on a thread of its own, a frame behind the filter graph:
 * while it translates frame N, ffmpeg decodes, converts and encodes the
 * frames around it. Frames leave in the order they came, at most
 * QUEUE_SIZE of them inside the filter at once (one with pipeline=0).
 */

#include <math.h>
#include <string.h>

#include <transmute.h>

#include "libavutil/avstring.h"
#include "libavutil/imgutils.h"
#include "libavutil/internal.h"
#include "libavutil/opt.h"
#include "libavutil/pixdesc.h"
#include "libavutil/thread.h"

#include "avfilter.h"
#include "filters.h"
#include "internal.h"
#include "scene_sad.h"
#include "video.h"

/* One frame being translated, one waiting: enough for the model never to
 * wait on the graph, and a frame of latency only. */
#define QUEUE_SIZE 2

enum StatsMode { STATS_FRAME, STATS_SMOOTH, NB_STATS };

typedef struct TransmuteJob {
    AVFrame *in;
    AVFrame *out;        /* the frame that leaves; NULL: in leaves as it is */
    int run;             /* the worker translates in into out */
    float *label;        /* the target when the frame came in */
    float *packed;       /* planar float formats: the interleaved copy the model reads (and
                          * at scale 1 writes) */
    unsigned packed_size;
    float *packed_out;   /* planar float formats at scale > 1: what the model writes */
    unsigned packed_out_size;
    float blend;
    float smoothing;
    int reset_stats;     /* a scene cut: the model forgets its carried statistics first */
    tm_status status;
    char error[256];
} TransmuteJob;

typedef struct TransmuteContext {
    const AVClass *class;

    char *model_path;
    char *device;
    char *domains;
    double blend;
    int stats;
    double smoothing;
    double scene;
    int tile;
    int threads;
    int pipeline;

    tm_ctx *tm;
    tm_model *model;
    const struct tm_model_info *info;
    float *label;        /* from domains; NULL for a model without domains */

    const AVPixFmtDescriptor *desc;
    int scale;           /* the model's: output sides / input sides */
    int channels;        /* interleaved channels the model gets, alpha included */
    tm_sample_type type;
    ff_scene_sad_fn sad; /* NULL for float formats, compared by scene_mafd itself */
    AVFrame *prev;       /* the last frame translated, for scene cuts */
    double prev_mafd;

    /* The worker. jobs[n % QUEUE_SIZE] is the n-th frame taken in; the
     * counters only grow. Under lock: submitted, done, quit. The model is
     * used under model_lock, by the worker and by process_command. */
    TransmuteJob jobs[QUEUE_SIZE];
    uint64_t submitted, done, taken;
    pthread_t thread;
    enum { NO_THREAD, SYNC_ONLY, THREAD_RUNNING } threading; /* what uninit undoes */
    int quit;
    volatile int cancel;
    pthread_mutex_t lock, model_lock;
    pthread_cond_t work_cond, done_cond;
} TransmuteContext;

#define OFFSET(x) offsetof(TransmuteContext, x)
#define FLAGS AV_OPT_FLAG_FILTERING_PARAM | AV_OPT_FLAG_VIDEO_PARAM
#define TFLAGS FLAGS | AV_OPT_FLAG_RUNTIME_PARAM

static const AVOption transmute_options[] = {
    { "model",     "the model file (safetensors)",  OFFSET(model_path), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "blend",     "mix of translation and original (1: translation only; super-resolution models: 1 only)", OFFSET(blend), AV_OPT_TYPE_DOUBLE, { .dbl = 1 }, 0, 1, TFLAGS },
    { "device",    "cpu, vulkan, a Vulkan device index or part of its name (default: TRANSMUTE_DEVICE, else automatic)",
                                                    OFFSET(device),     AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, FLAGS },
    { "domains",   "multi-domain models: the target domains, comma-separated", OFFSET(domains), AV_OPT_TYPE_STRING, { .str = NULL }, 0, 0, TFLAGS },
    { "stats",     "norm statistics",                OFFSET(stats),      AV_OPT_TYPE_INT,    { .i64 = STATS_FRAME }, 0, NB_STATS - 1, FLAGS, "stats" },
        { "frame",  "each frame's own, as the model's test code", 0, AV_OPT_TYPE_CONST, { .i64 = STATS_FRAME },  0, 0, FLAGS, "stats" },
        { "smooth", "carried across frames (less flicker)",     0, AV_OPT_TYPE_CONST, { .i64 = STATS_SMOOTH }, 0, 0, FLAGS, "stats" },
    { "smoothing", "stats=smooth: weight of the carried statistics", OFFSET(smoothing), AV_OPT_TYPE_DOUBLE, { .dbl = 0.9 }, 0, 0.999, TFLAGS },
    { "scene",     "stats=smooth: scene change score that starts fresh statistics (1: never)",
                                                    OFFSET(scene),      AV_OPT_TYPE_DOUBLE, { .dbl = 0.3 }, 0, 1, FLAGS },
    { "tile",      "run the network in tiles of at most this many pixels a side (0: when device memory needs it, -1: never)",
                                                    OFFSET(tile),       AV_OPT_TYPE_INT,    { .i64 = 0 }, -1, INT_MAX, FLAGS },
    /* Not "threads": every filter has that one, for slice threading. */
    { "cpu_threads", "CPU device: threads the model runs on (0: all cores)",
                                                    OFFSET(threads),    AV_OPT_TYPE_INT,    { .i64 = 0 }, 0, INT_MAX, FLAGS },
    { "pipeline",  "translate a frame while ffmpeg prepares the next (0: one at a time, none held back)",
                                                    OFFSET(pipeline),   AV_OPT_TYPE_BOOL,   { .i64 = 1 }, 0, 1, FLAGS },
    { NULL }
};

AVFILTER_DEFINE_CLASS(transmute);

static const enum AVPixelFormat pix_fmts[] = {
    AV_PIX_FMT_RGB24, AV_PIX_FMT_RGBA, AV_PIX_FMT_RGB48, AV_PIX_FMT_RGBA64,
    AV_PIX_FMT_GBRPF32, AV_PIX_FMT_GBRAPF32, AV_PIX_FMT_NONE
};

/* The library's informational lines (the device chosen, tiling) are
 * ffmpeg's verbose ones. */
static void log_callback(void *priv, tm_log_level level, const char *msg)
{
    int av_level = level == TM_LOG_ERR  ? AV_LOG_ERROR   :
                   level == TM_LOG_WARN ? AV_LOG_WARNING :
                   level == TM_LOG_INFO ? AV_LOG_VERBOSE : AV_LOG_DEBUG;
    av_log(priv, av_level, "%s\n", msg);
}

static int averror(tm_status s)
{
    return s == TM_ERR_NOMEM   ? AVERROR(ENOMEM) :
           s == TM_ERR_INVALID ? AVERROR(EINVAL) :
           s == TM_ERR_IO      ? AVERROR(EIO)    : AVERROR_EXTERNAL;
}

/* The library formats no message ffmpeg would not print. */
static tm_log_level library_log_level(void)
{
    int l = av_log_get_level();
    return l >= AV_LOG_DEBUG ? TM_LOG_DEBUG : l >= AV_LOG_VERBOSE ? TM_LOG_INFO : TM_LOG_WARN;
}

/* "A, B, C": the model's domains, for messages. */
static void list_domains(const struct tm_model_info *info, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < info->n_domains; i++) {
        if (i)
            av_strlcat(buf, ", ", len);
        av_strlcat(buf, info->domains[i], len);
    }
}

/* The label the domains option names, into label (label_size floats). Called
 * with the model free: at init, or holding model_lock. */
static int make_label(AVFilterContext *ctx, const char *domains, float *label)
{
    TransmuteContext *s = ctx->priv;
    int given = domains && domains[strspn(domains, " ,")];
    char names[1024];

    if (!s->info->label_size) {
        if (!given)
            return 0;
        av_log(ctx, AV_LOG_ERROR, "model '%s' has no domains to choose (domains='%s')\n",
               s->model_path, domains);
        return AVERROR(EINVAL);
    }
    if (!given) {
        list_domains(s->info, names, sizeof(names));
        av_log(ctx, AV_LOG_ERROR, "model '%s' needs target domains: domains=NAME[,NAME...], "
               "one or more of: %s\n", s->model_path, names);
        return AVERROR(EINVAL);
    }
    if (tm_model_label_from_domains(s->model, domains, label, s->info->label_size) != TM_OK) {
        av_log(ctx, AV_LOG_ERROR, "domains='%s': %s\n", domains, tm_ctx_error(s->tm));
        return AVERROR(EINVAL);
    }
    return 0;
}

/* ---- Scene cuts ------------------------------------------------------- */

/* Sum of absolute differences of planar float samples, in 8-bit steps as
 * the integer formats' are counted. */
static double float_sad(const AVFrame *a, const AVFrame *b, int planes)
{
    double sum = 0;
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < a->height; y++) {
            const float *ra = (const float *)(a->data[p] + y * a->linesize[p]);
            const float *rb = (const float *)(b->data[p] + y * b->linesize[p]);
            for (int x = 0; x < a->width; x++)
                sum += fabsf(ra[x] - rb[x]);
        }
    return sum * 255;
}

/* The mean absolute frame difference in 8-bit steps, as select's `scene`. */
static double scene_mafd(TransmuteContext *s, const AVFrame *a, const AVFrame *b)
{
    int n = s->desc->nb_components;
    double count = (double)a->width * a->height * n;
    uint64_t sad;

    if (!s->sad)
        return float_sad(a, b, n) / count;
    s->sad(a->data[0], a->linesize[0], b->data[0], b->linesize[0],
           (ptrdiff_t)a->width * n, a->height, &sad);
    emms_c();
    return sad / count / (1 << (s->desc->comp[0].depth - 8));
}

/* Whether frame starts a new scene, by the select filter's `scene` score:
 * the smaller of the frame's mean difference from the previous one and how
 * much that difference jumped since the frame before, so that steady motion
 * or noise is no cut. A size change is none either: the library starts
 * afresh on it by itself. */
static int is_scene_cut(TransmuteContext *s, AVFrame *frame)
{
    int cut = 0;
    if (s->prev && s->prev->width == frame->width && s->prev->height == frame->height) {
        double mafd = scene_mafd(s, s->prev, frame);
        double score = av_clipd(FFMIN(mafd, fabs(mafd - s->prev_mafd)) / 100., 0, 1);
        s->prev_mafd = mafd;
        cut = score > s->scene;
    }
    av_frame_free(&s->prev);
    s->prev = av_frame_clone(frame);
    return cut;
}

/* ---- Pixels ------------------------------------------------------------ */

/* Planar GBR(A) float to interleaved RGB(A) float, colours clamped to
 * 0..1: the model reads 0..1 only. */
static void pack_planar(const AVFrame *f, float *dst, int channels)
{
    static const int plane_of[4] = { 2, 0, 1, 3 }; /* R, G, B, A */
    for (int y = 0; y < f->height; y++)
        for (int c = 0; c < channels; c++) {
            const float *src = (const float *)(f->data[plane_of[c]] + y * f->linesize[plane_of[c]]);
            float *d = dst + (size_t)y * f->width * channels + c;
            for (int x = 0; x < f->width; x++, d += channels)
                *d = c == 3 ? src[x] : av_clipf(src[x], 0, 1);
        }
}

/* The translation back into planar output, mixed with the original by blend;
 * alpha is the original's. */
static void unpack_planar(const float *src, const AVFrame *in, AVFrame *out, int channels,
                          float blend)
{
    static const int plane_of[4] = { 2, 0, 1, 3 };
    for (int y = 0; y < out->height; y++)
        for (int c = 0; c < channels; c++) {
            int p = plane_of[c];
            const float *orig = (const float *)(in->data[p] + y * in->linesize[p]);
            const float *t = src + (size_t)y * out->width * channels + c;
            float *d = (float *)(out->data[p] + y * out->linesize[p]);
            for (int x = 0; x < out->width; x++, t += channels)
                d[x] = c == 3 ? orig[x] : orig[x] + blend * (*t - orig[x]);
        }
}

/* The model's planar result at scale > 1: every channel, alpha included
 * (resized by the library); there is no blend. */
static void unpack_planar_scaled(const float *src, AVFrame *out, int channels)
{
    static const int plane_of[4] = { 2, 0, 1, 3 };
    for (int y = 0; y < out->height; y++)
        for (int c = 0; c < channels; c++) {
            const float *t = src + (size_t)y * out->width * channels + c;
            float *d = (float *)(out->data[plane_of[c]] + y * out->linesize[plane_of[c]]);
            for (int x = 0; x < out->width; x++, t += channels)
                d[x] = *t;
        }
}

/* A frame the timeline disables, at a super-resolution model's output size:
 * every pixel repeated scale x scale times, so that the stream keeps one
 * size. Works on any of the formats taken: bpp bytes a pixel in each plane. */
static void upscale_nearest(const AVFrame *in, AVFrame *out, int scale, int planes, int bpp)
{
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < out->height; y++) {
            const uint8_t *src = in->data[p] + (y / scale) * in->linesize[p];
            uint8_t *dst = out->data[p] + y * out->linesize[p];
            for (int x = 0; x < out->width; x++)
                memcpy(dst + x * bpp, src + (x / scale) * bpp, bpp);
        }
}

/* Interleaved output mixed in place with the original: R, G and B; alpha,
 * copied by the library, stays. */
static void mix_packed(const AVFrame *in, AVFrame *out, int channels, tm_sample_type type,
                       float blend)
{
    for (int y = 0; y < out->height; y++) {
        const uint8_t *a8 = in->data[0] + y * in->linesize[0];
        uint8_t *o8 = out->data[0] + y * out->linesize[0];
        for (int x = 0; x < out->width; x++)
            for (int c = 0; c < 3; c++) {
                int i = x * channels + c;
                if (type == TM_U8) {
                    o8[i] = lrintf(a8[i] + blend * (o8[i] - a8[i]));
                } else {
                    const uint16_t *a16 = (const uint16_t *)a8;
                    uint16_t *o16 = (uint16_t *)o8;
                    o16[i] = lrintf(a16[i] + blend * (o16[i] - a16[i]));
                }
            }
    }
}

/* ---- The worker -------------------------------------------------------- */

static int is_planar(const TransmuteContext *s)
{
    return !!(s->desc->flags & AV_PIX_FMT_FLAG_PLANAR);
}

static void translate_job(TransmuteContext *s, TransmuteJob *j)
{
    struct tm_image in = {
        .data = j->in->data[0], .stride = j->in->linesize[0],
        .width = j->in->width, .height = j->in->height,
        .channels = s->channels, .type = s->type,
    };
    struct tm_image out = {
        .width = in.width * s->scale, .height = in.height * s->scale,
        .channels = s->channels, .type = s->type,
    };
    struct tm_translate_params p = {
        .cancel = &s->cancel,
        .label = j->label,
        .label_size = j->label ? s->info->label_size : 0,
        .tile = s->tile,
        .smoothing = j->smoothing,
    };
    if (is_planar(s)) {
        /* In place in the interleaved copy at scale 1. */
        in.data = j->packed;
        out.data = s->scale == 1 ? j->packed : j->packed_out;
        in.stride = out.stride = 0;
    } else {
        out.data = j->out->data[0];
        out.stride = j->out->linesize[0];
    }
    pthread_mutex_lock(&s->model_lock);
    if (j->reset_stats)
        tm_model_reset_stats(s->model);
    j->status = tm_translate(s->model, &in, &out, &p);
    if (j->status != TM_OK)
        av_strlcpy(j->error, tm_ctx_error(s->tm), sizeof(j->error));
    pthread_mutex_unlock(&s->model_lock);
}

static void *worker(void *arg)
{
    TransmuteContext *s = arg;
    TransmuteJob *j;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->quit && s->done == s->submitted)
            pthread_cond_wait(&s->work_cond, &s->lock);
        if (s->quit)
            break;
        j = &s->jobs[s->done % QUEUE_SIZE];
        pthread_mutex_unlock(&s->lock);
        if (j->run)
            translate_job(s, j);
        pthread_mutex_lock(&s->lock);
        s->done++;
        pthread_cond_signal(&s->done_cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- The filter thread ------------------------------------------------- */

/* The output size of a w x h input: the model's scale times it, or an
 * error when that is more than a frame can be. */
static int scaled_size(AVFilterContext *ctx, int w, int h, int *out_w, int *out_h)
{
    TransmuteContext *s = ctx->priv;

    if (w > INT_MAX / s->scale || h > INT_MAX / s->scale ||
        av_image_check_size(w * s->scale, h * s->scale, 0, NULL) < 0) {
        av_log(ctx, AV_LOG_ERROR, "a %dx model would make %"PRId64"x%"PRId64" frames from %dx%d ones: "
               "too large\n", s->scale, (int64_t)w * s->scale, (int64_t)h * s->scale, w, h);
        return AVERROR(EINVAL);
    }
    *out_w = w * s->scale;
    *out_h = h * s->scale;
    return 0;
}

/* A new output frame for in, scale times its size, with its properties. */
static int new_output(AVFilterContext *ctx, TransmuteJob *j, AVFrame *in)
{
    int w, h, ret;

    if ((ret = scaled_size(ctx, in->width, in->height, &w, &h)) < 0)
        return ret;
    if (!(j->out = ff_get_video_buffer(ctx->outputs[0], w, h)))
        return AVERROR(ENOMEM);
    return av_frame_copy_props(j->out, in);
}

/* Fills job j for frame in: its output frame and what the worker reads. */
static int prepare(AVFilterContext *ctx, TransmuteJob *j, AVFrame *in)
{
    TransmuteContext *s = ctx->priv;
    int ret;

    if ((ret = new_output(ctx, j, in)) < 0)
        return ret;
    if (s->label)
        memcpy(j->label, s->label, s->info->label_size * sizeof(*s->label));
    j->blend = s->blend;
    j->smoothing = s->stats == STATS_SMOOTH ? s->smoothing : 0;
    j->reset_stats = j->smoothing > 0 && is_scene_cut(s, in);
    if (is_planar(s)) {
        size_t n = (size_t)in->width * in->height * s->channels * sizeof(float);
        av_fast_malloc(&j->packed, &j->packed_size, n);
        if (!j->packed)
            return AVERROR(ENOMEM);
        if (s->scale > 1) {
            av_fast_malloc(&j->packed_out, &j->packed_out_size, n * s->scale * s->scale);
            if (!j->packed_out)
                return AVERROR(ENOMEM);
        }
        pack_planar(in, j->packed, s->channels);
    }
    return 0;
}

/* A frame that is not translated: as it is, or at a super-resolution
 * model's size by pixel repetition. */
static int pass_through(AVFilterContext *ctx, TransmuteJob *j, AVFrame *in)
{
    TransmuteContext *s = ctx->priv;
    int ret;

    if (s->scale == 1)
        return 0;
    if ((ret = new_output(ctx, j, in)) < 0)
        return ret;
    upscale_nearest(in, j->out, s->scale, av_pix_fmt_count_planes(in->format), s->desc->comp[0].step);
    return 0;
}

/* Queues frame in: a job for the worker, or one passing through. */
static int submit(AVFilterContext *ctx, AVFrame *in)
{
    TransmuteContext *s = ctx->priv;
    TransmuteJob *j = &s->jobs[s->submitted % QUEUE_SIZE];
    int ret;

    j->in = in;
    if (in->format != ctx->inputs[0]->format) {
        av_log(ctx, AV_LOG_ERROR, "the pixel format changed mid-stream (%s to %s)\n",
               s->desc->name, av_get_pix_fmt_name(in->format));
        ret = AVERROR(EINVAL);
        goto fail;
    }
    /* Timeline off or blend 0: the frame as it is, without the work. */
    j->run = !ctx->is_disabled && s->blend > 0;
    if ((ret = j->run ? prepare(ctx, j, in) : pass_through(ctx, j, in)) < 0)
        goto fail;
    pthread_mutex_lock(&s->lock);
    s->submitted++;
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
fail:
    av_frame_free(&j->in);
    av_frame_free(&j->out);
    return ret;
}

static int oldest_done(TransmuteContext *s)
{
    int done;

    pthread_mutex_lock(&s->lock);
    done = s->done > s->taken;
    pthread_mutex_unlock(&s->lock);
    return done;
}

/* Waits for the oldest job and hands back its output frame. */
static int take_oldest(AVFilterContext *ctx, AVFrame **frame)
{
    TransmuteContext *s = ctx->priv;
    TransmuteJob *j = &s->jobs[s->taken % QUEUE_SIZE];

    pthread_mutex_lock(&s->lock);
    while (s->done == s->taken)
        pthread_cond_wait(&s->done_cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    s->taken++;

    if (!j->run) {
        *frame = j->out ? j->out : j->in;
        if (j->out)
            av_frame_free(&j->in);
        j->in = j->out = NULL;
        return 0;
    }
    if (j->status != TM_OK) {
        av_log(ctx, AV_LOG_ERROR, "%s\n", j->error);
        av_frame_free(&j->in);
        av_frame_free(&j->out);
        return averror(j->status);
    }
    if (is_planar(s) && s->scale > 1)
        unpack_planar_scaled(j->packed_out, j->out, s->channels);
    else if (is_planar(s))
        unpack_planar(j->packed, j->in, j->out, s->channels, j->blend);
    else if (j->blend < 1)
        mix_packed(j->in, j->out, s->channels, s->type, j->blend);
    av_frame_free(&j->in);
    *frame = j->out;
    j->out = NULL;
    return 0;
}

static int activate(AVFilterContext *ctx)
{
    TransmuteContext *s = ctx->priv;
    AVFilterLink *inlink = ctx->inputs[0];
    AVFilterLink *outlink = ctx->outputs[0];
    int queued = s->submitted - s->taken, depth = s->pipeline ? QUEUE_SIZE : 1;
    int ended, status, ret;
    int64_t pts;
    AVFrame *frame;

    FF_FILTER_FORWARD_STATUS_BACK(outlink, inlink);

    if (queued < depth) {
        if ((ret = ff_inlink_consume_frame(inlink, &frame)) < 0)
            return ret;
        if (ret > 0) {
            if ((ret = submit(ctx, frame)) < 0)
                return ret;
            queued++;
        }
    }

    /* Wait on the worker only when there is nothing else to do: the queue
     * is full (back-pressure on the decoder) or the input has ended. */
    ended = ff_inlink_acknowledge_status(inlink, &status, &pts);
    if (queued && (queued == depth || ended || oldest_done(s))) {
        if ((ret = take_oldest(ctx, &frame)) < 0)
            return ret;
        ff_filter_set_ready(ctx, 100); /* more may be done, or queued upstream */
        return ff_filter_frame(outlink, frame);
    }
    if (ended) {
        ff_outlink_set_status(outlink, status, pts);
        return 0;
    }
    FF_FILTER_FORWARD_WANTED(outlink, inlink);
    return FFERROR_NOT_READY;
}

static int config_input(AVFilterLink *inlink)
{
    TransmuteContext *s = inlink->dst->priv;

    s->desc = av_pix_fmt_desc_get(inlink->format);
    s->channels = s->desc->nb_components;
    s->type = s->desc->flags & AV_PIX_FMT_FLAG_FLOAT ? TM_F32 :
              s->desc->comp[0].depth > 8 ? TM_U16 : TM_U8;
    s->sad = s->type == TM_F32 ? NULL : ff_scene_sad_get_fn(s->type == TM_U8 ? 8 : 16);
    av_frame_free(&s->prev);
    return 0;
}

/* The output is the model's scale times the input; pixels keep their
 * shape (the sample aspect ratio stays). */
static int config_output(AVFilterLink *outlink)
{
    AVFilterContext *ctx = outlink->src;
    TransmuteContext *s = ctx->priv;
    AVFilterLink *inlink = ctx->inputs[0];
    int ret;

    if ((ret = scaled_size(ctx, inlink->w, inlink->h, &outlink->w, &outlink->h)) < 0)
        return ret;
    outlink->sample_aspect_ratio = inlink->sample_aspect_ratio;
    if (s->scale > 1)
        av_log(ctx, AV_LOG_VERBOSE, "%dx super-resolution: %dx%d to %dx%d\n", s->scale,
               inlink->w, inlink->h, outlink->w, outlink->h);
    return 0;
}

/* Mixing needs the input at the output's size: a super-resolution model
 * takes blend 1 only. */
static int check_blend(AVFilterContext *ctx, double blend)
{
    TransmuteContext *s = ctx->priv;

    if (s->scale == 1 || blend == 1)
        return 0;
    av_log(ctx, AV_LOG_ERROR, "model '%s' is a %dx super-resolution model: blend must be 1 "
           "(the input frame has another size to mix with), not %g\n", s->model_path, s->scale,
           blend);
    return AVERROR(EINVAL);
}

static int alloc_labels(TransmuteContext *s)
{
    if (!s->info->label_size)
        return 0;
    if (!(s->label = av_calloc(s->info->label_size, sizeof(*s->label))))
        return AVERROR(ENOMEM);
    for (int i = 0; i < QUEUE_SIZE; i++)
        if (!(s->jobs[i].label = av_calloc(s->info->label_size, sizeof(*s->label))))
            return AVERROR(ENOMEM);
    return 0;
}

static int load_model(AVFilterContext *ctx)
{
    TransmuteContext *s = ctx->priv;
    struct tm_ctx_params params = {
        .device = s->device, .threads = s->threads,
        .log = log_callback, .log_priv = ctx, .log_level = library_log_level(),
    };
    char err[256];
    tm_status st;

    if (!s->model_path || !*s->model_path) {
        av_log(ctx, AV_LOG_ERROR, "no model given: model=FILE.safetensors\n");
        return AVERROR(EINVAL);
    }
    if ((st = tm_ctx_create(&params, &s->tm, err, sizeof(err))) != TM_OK) {
        av_log(ctx, AV_LOG_ERROR, "cannot use device '%s': %s\n",
               s->device ? s->device : "auto", err);
        return averror(st);
    }
    if ((st = tm_model_load(s->tm, s->model_path, &s->model)) != TM_OK) {
        const char *msg = tm_ctx_error(s->tm);
        /* The library's message names the file when it is about the file. */
        if (strstr(msg, s->model_path))
            av_log(ctx, AV_LOG_ERROR, "%s\n", msg);
        else
            av_log(ctx, AV_LOG_ERROR, "cannot load model '%s': %s\n", s->model_path, msg);
        return averror(st);
    }
    s->info = tm_model_info(s->model);
    s->scale = s->info->scale;
    if (s->info->input_nc != 3) {
        av_log(ctx, AV_LOG_ERROR, "model '%s' takes %d-channel images: the filter runs RGB models\n",
               s->model_path, s->info->input_nc);
        return AVERROR(EINVAL);
    }
    av_log(ctx, AV_LOG_VERBOSE, "model '%s' (%s) on %s\n", s->model_path, s->info->arch,
           tm_ctx_device(s->tm)->name);
    return 0;
}

static av_cold int init(AVFilterContext *ctx)
{
    TransmuteContext *s = ctx->priv;
    int ret;

    if ((ret = load_model(ctx)) < 0 || (ret = check_blend(ctx, s->blend)) < 0 ||
        (ret = alloc_labels(s)) < 0 || (ret = make_label(ctx, s->domains, s->label)) < 0)
        return ret;

    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->model_lock, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    if ((ret = pthread_create(&s->thread, NULL, worker, s))) {
        av_log(ctx, AV_LOG_ERROR, "cannot start a thread: %s\n", av_err2str(AVERROR(ret)));
        ret = AVERROR(ret);
    }
    s->threading = ret ? SYNC_ONLY : THREAD_RUNNING;
    return ret;
}

static av_cold void uninit(AVFilterContext *ctx)
{
    TransmuteContext *s = ctx->priv;

    if (s->threading == THREAD_RUNNING) {
        pthread_mutex_lock(&s->lock);
        s->quit = 1;
        s->cancel = 1; /* a translation under way stops at its next op */
        pthread_cond_signal(&s->work_cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->threading != NO_THREAD) {
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->model_lock);
        pthread_cond_destroy(&s->work_cond);
        pthread_cond_destroy(&s->done_cond);
    }
    for (int i = 0; i < QUEUE_SIZE; i++) {
        av_frame_free(&s->jobs[i].in);
        av_frame_free(&s->jobs[i].out);
        av_freep(&s->jobs[i].packed);
        av_freep(&s->jobs[i].packed_out);
        av_freep(&s->jobs[i].label);
    }
    av_frame_free(&s->prev);
    av_freep(&s->label);
    tm_model_destroy(&s->model);
    tm_ctx_destroy(&s->tm);
}

/* A new target, checked against the model first: a wrong one is an error
 * and the old target stays. */
static int set_domains(AVFilterContext *ctx, const char *domains)
{
    TransmuteContext *s = ctx->priv;
    float *label = NULL;
    int ret;

    if (s->info->label_size && !(label = av_calloc(s->info->label_size, sizeof(*label))))
        return AVERROR(ENOMEM);
    /* The worker may be translating with the model right now. */
    pthread_mutex_lock(&s->model_lock);
    ret = make_label(ctx, domains, label);
    pthread_mutex_unlock(&s->model_lock);
    if (ret >= 0 && (ret = av_opt_set(s, "domains", domains, 0)) >= 0)
        FFSWAP(float *, s->label, label);
    av_free(label);
    return ret;
}

/* A new blend; one a super-resolution model cannot take is an error and
 * the old value stays. */
static int set_blend(AVFilterContext *ctx, const char *args, char *res, int res_len, int flags)
{
    TransmuteContext *s = ctx->priv;
    double old = s->blend;
    int ret = ff_filter_process_command(ctx, "blend", args, res, res_len, flags);

    if (ret >= 0 && (ret = check_blend(ctx, s->blend)) < 0)
        s->blend = old;
    return ret;
}

/* Every change applies from the next frame that comes in. */
static int process_command(AVFilterContext *ctx, const char *cmd, const char *args,
                           char *res, int res_len, int flags)
{
    if (!strcmp(cmd, "domains"))
        return set_domains(ctx, args);
    if (!strcmp(cmd, "blend"))
        return set_blend(ctx, args, res, res_len, flags);
    return ff_filter_process_command(ctx, cmd, args, res, res_len, flags);
}

static const AVFilterPad transmute_inputs[] = {
    {
        .name         = "default",
        .type         = AVMEDIA_TYPE_VIDEO,
        .config_props = config_input,
    },
};

static const AVFilterPad transmute_outputs[] = {
    {
        .name         = "default",
        .type         = AVMEDIA_TYPE_VIDEO,
        .config_props = config_output,
    },
};

const AVFilter ff_vf_transmute = {
    .name            = "transmute",
    .description     = NULL_IF_CONFIG_SMALL("Translate images with a GAN generator, or upscale them with a super-resolution network (libtransmute)."),
    .priv_size       = sizeof(TransmuteContext),
    .priv_class      = &transmute_class,
    .init            = init,
    .uninit          = uninit,
    .activate        = activate,
    FILTER_INPUTS(transmute_inputs),
    FILTER_OUTPUTS(transmute_outputs),
    FILTER_PIXFMTS_ARRAY(pix_fmts),
    .process_command = process_command,
    /* Internal: frames that the timeline disables keep their place in the
     * queue (the generic path would overtake the ones being translated). */
    .flags           = AVFILTER_FLAG_SUPPORT_TIMELINE_INTERNAL,
};
