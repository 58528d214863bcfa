/*
 * domain_toggles.h: check buttons for the target domains of a multi-domain
 * (StarGAN) model, one group per dataset (GTK 2). A label speaks for one
 * dataset, so turning on a domain turns off those of the other datasets.
 */
#ifndef TRANSMUTE_PLUGIN_DOMAIN_TOGGLES_H
#define TRANSMUTE_PLUGIN_DOMAIN_TOGGLES_H

#include <gtk/gtk.h>

#include <transmute.h>

/* Called with the chosen domains, comma-separated in the model's order
 * ("" for none), once when the widget is made and after every change. */
typedef void (*domain_toggles_changed)(void *priv, const char *domains);

/* The toggles for mi's domains, those named in chosen (comma-separated)
 * turned on. The widget keeps its own copy of the names. */
GtkWidget *domain_toggles_new(const struct tm_model_info *mi, const char *chosen,
                              domain_toggles_changed changed, void *priv);

#endif
