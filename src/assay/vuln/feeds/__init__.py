"""Advisory feeds, one module per published format, all behind the ``Feed`` protocol."""

from __future__ import annotations

from assay.vuln.feeds._interface import Feed
from assay.vuln.feeds.debian_tracker import DebianTrackerFeed
from assay.vuln.feeds.epss import EpssFeed
from assay.vuln.feeds.kev import KevFeed
from assay.vuln.feeds.nvd import NvdFeed
from assay.vuln.feeds.osv import OsvFeed

__all__ = ["FEEDS", "DebianTrackerFeed", "EpssFeed", "Feed", "KevFeed", "NvdFeed", "OsvFeed"]

FEEDS: dict[str, Feed] = {
    f.name: f for f in (DebianTrackerFeed(), OsvFeed(), KevFeed(), EpssFeed(), NvdFeed())
}
