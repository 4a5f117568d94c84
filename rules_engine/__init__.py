"""rules-engine: configuration-driven settlement for China's basic medical insurance (医保)."""
from .api import Claim, ClaimError, Engine, PackLoadError, ReloadResult, Settlement, SettlementError

__version__ = "0.1.0"
__all__ = ["Engine", "PackLoadError", "ReloadResult", "Settlement", "SettlementError", "ClaimError", "Claim",
           "__version__"]
