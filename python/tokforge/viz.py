"""The old home of the drawing functions, kept for one release: it re-exports
:mod:`tokforge.inspect.viz` and the views' own HTML and plot functions."""

from .inspect.comparison import comparison_html as comparison_html
from .inspect.explanation import explanation_html as explanation_html
from .inspect.stats import plot_stats as plot_stats
from .inspect.viz import CSS as CSS
from .inspect.viz import GLYPHS as GLYPHS
from .inspect.viz import ansi_dim as ansi_dim
from .inspect.viz import ansi_mark as ansi_mark
from .inspect.viz import ansi_token as ansi_token
from .inspect.viz import display_width as display_width
from .inspect.viz import html_page as html_page
from .inspect.viz import pad as pad
from .inspect.viz import printable as printable
from .inspect.viz import table as table
from .inspect.viz import token_css as token_css
from .inspect.viz import token_rgb as token_rgb
from .inspect.viz import use_color as use_color

__all__ = [
    "CSS",
    "GLYPHS",
    "ansi_dim",
    "ansi_mark",
    "ansi_token",
    "comparison_html",
    "display_width",
    "explanation_html",
    "html_page",
    "pad",
    "plot_stats",
    "printable",
    "table",
    "token_css",
    "token_rgb",
    "use_color",
]
