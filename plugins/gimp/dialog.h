/*
 * dialog.h: the interactive dialog of plug-in-transmute (GIMP 2, libgimpui):
 * model list and file chooser, the model's description, domain toggles,
 * blend, output mode, device, and a preview of the result (for a
 * super-resolution model, of the middle of the visible part at its scale).
 */
#ifndef TRANSMUTE_PLUGIN_DIALOG_H
#define TRANSMUTE_PLUGIN_DIALOG_H

#include <libgimp/gimp.h>

#include "values.h"

/* Shows the dialog for drawable starting from *v. TRUE with *v updated when
 * the user accepts; it accepts only a loadable model that can read the
 * layer, for a multi-domain model a target domain, and an output mode the
 * model can take (a super-resolution model: blend 1, no new layer, and no
 * selection when it scales the layer). */
gboolean dialog_run(gint32 drawable, struct plug_values *v);

#endif
