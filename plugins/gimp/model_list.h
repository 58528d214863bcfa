/*
 * model_list.h: the model files a plug-in offers in its list: the
 * *.safetensors files of the standard folders, in this order:
 *   $XDG_DATA_HOME/transmute/models (default ~/.local/share/transmute/models)
 *   the installed data folder, <prefix>/share/transmute/models
 *   the plug-in's own folder (a user install puts models beside the binary)
 * Host-independent, like engine.h.
 */
#ifndef TRANSMUTE_PLUGIN_MODEL_LIST_H
#define TRANSMUTE_PLUGIN_MODEL_LIST_H

#define MODEL_LIST_DIRS 3

struct model_list {
    int n;
    char **paths; /* absolute paths */
};

/* The folders above (some may not exist); each entry is malloc'd or NULL
 * when it cannot be told (no HOME). */
void model_list_dirs(char *dirs[MODEL_LIST_DIRS]);

/* Lists the files found, by name within each folder; a file reached through
 * two folders is listed once. Out of memory ends the list early. */
void model_list_find(struct model_list *list);

void model_list_free(struct model_list *list);

#endif
