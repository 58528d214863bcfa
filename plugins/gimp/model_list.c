/* model_list.c: model files in the standard folders (model_list.h). */
#include "model_list.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TRANSMUTE_MODEL_DIR
#error "TRANSMUTE_MODEL_DIR (the installed models folder) comes from meson"
#endif

static char *join(const char *dir, const char *name)
{
    char *s;
    return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
}

/* XDG says a relative XDG_DATA_HOME is to be ignored. */
static char *user_dir(void)
{
    const char *x = getenv("XDG_DATA_HOME");
    if (x && x[0] == '/')
        return join(x, "transmute/models");
    const char *h = getenv("HOME");
    return h && *h ? join(h, ".local/share/transmute/models") : NULL;
}

static char *exe_dir(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return strdup(buf);
}

void model_list_dirs(char *dirs[MODEL_LIST_DIRS])
{
    dirs[0] = user_dir();
    dirs[1] = strdup(TRANSMUTE_MODEL_DIR);
    dirs[2] = exe_dir();
}

static bool is_model(const char *name)
{
    static const char ext[] = ".safetensors";
    size_t n = strlen(name), e = sizeof ext - 1;
    return name[0] != '.' && n > e && !strcmp(name + n - e, ext);
}

static bool listed(const struct model_list *l, const char *path)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->paths[i], path))
            return true;
    return false;
}

static bool push(struct model_list *l, char *path)
{
    char **p = realloc(l->paths, (size_t)(l->n + 1) * sizeof *p);
    if (!p)
        return false;
    l->paths = p;
    l->paths[l->n++] = path;
    return true;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Paths are stored resolved (realpath), so the same file reached through a
 * link or two folders compares equal. */
static void add_dir(struct model_list *l, const char *dir)
{
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return;
    int first = l->n;
    for (struct dirent *de; (de = readdir(d));) {
        if (!is_model(de->d_name))
            continue;
        char *p = join(dir, de->d_name);
        char *real = p ? realpath(p, NULL) : NULL;
        free(p);
        if (!real || listed(l, real) || !push(l, real))
            free(real);
    }
    closedir(d);
    qsort(l->paths + first, (size_t)(l->n - first), sizeof *l->paths, by_path);
}

void model_list_find(struct model_list *list)
{
    char *dirs[MODEL_LIST_DIRS];
    model_list_dirs(dirs);
    list->n = 0;
    list->paths = NULL;
    for (int i = 0; i < MODEL_LIST_DIRS; i++) {
        add_dir(list, dirs[i]);
        free(dirs[i]);
    }
}

void model_list_free(struct model_list *list)
{
    for (int i = 0; i < list->n; i++)
        free(list->paths[i]);
    free(list->paths);
    list->paths = NULL;
    list->n = 0;
}
