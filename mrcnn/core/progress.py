"""Progress bars: tqdm's notebook widget in Jupyter, text elsewhere, no warnings.

``tqdm.auto`` picks the widget bar in a Jupyter kernel, but when ipywidgets
is missing it warns "IProgress not found. Please update jupyter and
ipywidgets." at import, so every notebook that imports mrcnn would show it.
Here the same choice is made with that warning (and tqdm's "experimental"
notice) silenced: without ipywidgets the bars are tqdm's text bars.
Every progress bar of the package comes from here.
"""

import warnings

from tqdm import TqdmWarning

with warnings.catch_warnings():
    # TqdmExperimentalWarning is a TqdmWarning too.
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm  # noqa: E402

__all__ = ["tqdm"]
