"""The XCP-ng platform: boots built artifacts on a pool through XAPI (see platform.py)."""

from platforms.xcpng.platform import XcpngPlatform

__all__ = ["XcpngPlatform"]
