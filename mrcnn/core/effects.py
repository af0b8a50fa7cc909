"""Names of the image effects of `mrcnn.app.splash`, declared once.

The CLI's ``--effect`` choices, batch detection (`mrcnn.app.batch`), the
HTTP API (`mrcnn.serve.app`) and `splash.apply_effect` read them. No
imports: the CLI's parser loads this module before any model code.
"""

#: Background effects on an image: "splash" (objects in color, background
#: gray), "blur" (background blurred), "cutout" (RGBA, background
#: transparent), "replace" (a new background: an image or a color).
BACKGROUND_EFFECTS = ("splash", "blur", "cutout", "replace")

#: Everything `splash.apply_effect` does: the background effects and
#: "render" (the detections drawn: masks, boxes, labels).
EFFECTS = BACKGROUND_EFFECTS + ("render",)
