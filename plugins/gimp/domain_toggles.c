/* domain_toggles.c: target-domain check buttons (domain_toggles.h). */
#include "domain_toggles.h"

#include <string.h>

#define COLUMNS 3

struct toggles {
    int n;
    GtkWidget **buttons;
    int *group;        /* each domain's dataset; all 0 for a one-dataset model */
    gchar **names;
    gboolean updating; /* our own changes, not the user's */
    domain_toggles_changed changed;
    void *priv;
};

static gboolean listed(const char *list, const char *name)
{
    gchar **items = g_strsplit(list ? list : "", ",", -1);
    gboolean found = FALSE;
    for (gchar **p = items; *p && !found; p++)
        found = strcmp(g_strstrip(*p), name) == 0;
    g_strfreev(items);
    return found;
}

static void report(struct toggles *t)
{
    GString *s = g_string_new(NULL);
    for (int i = 0; i < t->n; i++)
        if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(t->buttons[i])))
            g_string_append_printf(s, "%s%s", s->len ? "," : "", t->names[i]);
    t->changed(t->priv, s->str);
    g_string_free(s, TRUE);
}

static void toggled(GtkToggleButton *button, struct toggles *t)
{
    if (t->updating)
        return;
    int i = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(button), "domain"));
    if (gtk_toggle_button_get_active(button)) {
        t->updating = TRUE;
        for (int j = 0; j < t->n; j++)
            if (t->group[j] != t->group[i])
                gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(t->buttons[j]), FALSE);
        t->updating = FALSE;
    }
    report(t);
}

static void destroyed(GtkWidget *widget, struct toggles *t)
{
    g_free(t->buttons);
    g_free(t->group);
    g_strfreev(t->names);
    g_free(t);
}

/* The domains of dataset g in a table; title is the dataset's name or NULL. */
static GtkWidget *group_table(struct toggles *t, int g, const char *title, const char *chosen)
{
    int count = 0;
    for (int i = 0; i < t->n; i++)
        count += t->group[i] == g;
    GtkWidget *table = gtk_table_new((guint)((count + COLUMNS - 1) / COLUMNS) + (title != NULL),
                                     COLUMNS, FALSE);
    gtk_table_set_col_spacings(GTK_TABLE(table), 6);
    guint row = 0, k = 0;
    if (title) {
        GtkWidget *label = gtk_label_new(title);
        gtk_misc_set_alignment(GTK_MISC(label), 0.0, 0.5);
        gtk_table_attach_defaults(GTK_TABLE(table), label, 0, COLUMNS, 0, 1);
        row = 1;
    }
    for (int i = 0; i < t->n; i++) {
        if (t->group[i] != g)
            continue;
        GtkWidget *b = gtk_check_button_new_with_label(t->names[i]);
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(b), listed(chosen, t->names[i]));
        g_object_set_data(G_OBJECT(b), "domain", GINT_TO_POINTER(i));
        g_signal_connect(b, "toggled", G_CALLBACK(toggled), t);
        gtk_table_attach_defaults(GTK_TABLE(table), b, k % COLUMNS, k % COLUMNS + 1,
                                  row + k / COLUMNS, row + k / COLUMNS + 1);
        t->buttons[i] = b;
        k++;
    }
    return table;
}

GtkWidget *domain_toggles_new(const struct tm_model_info *mi, const char *chosen,
                              domain_toggles_changed changed, void *priv)
{
    struct toggles *t = g_new0(struct toggles, 1);
    t->n = mi->n_domains;
    t->buttons = g_new0(GtkWidget *, (gsize)t->n);
    t->group = g_new0(int, (gsize)t->n);
    t->names = g_new0(gchar *, (gsize)t->n + 1);
    t->changed = changed;
    t->priv = priv;
    for (int i = 0; i < t->n; i++) {
        t->names[i] = g_strdup(mi->domains[i]);
        t->group[i] = mi->domain_group ? mi->domain_group[i] : 0;
    }
    GtkWidget *box = gtk_vbox_new(FALSE, 6);
    g_signal_connect(box, "destroy", G_CALLBACK(destroyed), t);
    int groups = mi->n_groups ? mi->n_groups : 1;
    for (int g = 0; g < groups; g++)
        gtk_box_pack_start(GTK_BOX(box), group_table(t, g, mi->n_groups ? mi->groups[g] : NULL, chosen),
                           FALSE, FALSE, 0);
    gtk_widget_show_all(box);
    report(t);
    return box;
}
