"""The numbers from which the doctor calls an image blank or small, a class rare or imbalanced.

In one place because they are used twice: by the measures and findings that apply them, and by
the report, which states them (report.json ``settings``, the "How these numbers were made" section)
so that a reader can tell what was flagged and why.
"""


#: an image whose pixel standard deviation (0..255 scale) is below this is called near-blank
BLANK_STD = 2.0
#: mean grey level below / above which an image is called very dark / very bright
DARK_MEAN, BRIGHT_MEAN = 20.0, 235.0
#: image files smaller than this on their short side carry little facial detail
SMALL_SIDE = 32
#: largest / smallest class ratio from which imbalance is flagged (medium, high)
IMBALANCE_MEDIUM, IMBALANCE_HIGH = 3.0, 10.0
#: a class with fewer images than this in an evaluation split gives noisy per-class scores
RARE_EVAL_COUNT = 100
#: Jensen-Shannon divergence (bits) from which a split's class mix is flagged (medium, high)
JS_MEDIUM, JS_HIGH = 0.01, 0.05
#: a class backed by fewer subjects/videos than this, or one supplying this share, is flagged
FEW_GROUPS, DOMINANT_SHARE = 20, 0.25
#: how many duplicate groups / pairs / blank images are listed in the dict (counts are always exact)
MAX_LISTED = 2000
