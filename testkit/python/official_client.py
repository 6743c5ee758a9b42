"""Drives the Kaltura stand-in with Kaltura's official Python client (it speaks XML only):
session.start, media.list, media.get, an unknown entry, a wrong secret and a refused
session.

    python3 testkit/python/official_client.py SERVICE_URL PARTNER_ID ADMIN_SECRET

Prints one line per check and "official client ok" at the end; exits non-zero on failure.
"""

import sys

from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaFilterPager,
    KalturaMediaEntryFilter,
    KalturaSessionType,
)

service_url, partner_id, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = KalturaConfiguration(partner_id)
config.serviceUrl = service_url
client = KalturaClient(config)

ks = client.session.start(secret, "official-client", KalturaSessionType.ADMIN, partner_id, 3600, "")
client.setKs(ks)
print(f"session.start: a session of {len(ks)} characters")

pager = KalturaFilterPager()
pager.pageSize = 5
listed = client.media.list(KalturaMediaEntryFilter(), pager)
assert listed.totalCount > 5, listed.totalCount
assert len(listed.objects) == 5, len(listed.objects)
first = listed.objects[0]
print(f"media.list: {listed.totalCount} entries, first {first.id} {first.name!r}")

entry = client.media.get(first.id)
assert entry.id == first.id and entry.name == first.name, (entry.id, entry.name)
print(f"media.get: {entry.id} {entry.name!r}, status {entry.status.getValue()}")

try:
    client.media.get("0_nothere")
    raise SystemExit("an unknown entry was found")
except KalturaException as e:
    assert e.code == "ENTRY_ID_NOT_FOUND", e.code
    print(f"unknown entry: {e.code}: {e}")

try:
    client.session.start("not-the-secret", "x", KalturaSessionType.ADMIN, partner_id)
    raise SystemExit("a session was started with the wrong secret")
except KalturaException as e:
    assert e.code == "START_SESSION_ERROR", e.code
    print(f"wrong secret: {e.code}")

client.setKs(ks[:-8] + "AAAAAAAA")
try:
    client.media.list(KalturaMediaEntryFilter(), pager)
    raise SystemExit("a tampered session was accepted")
except KalturaException as e:
    assert e.code == "INVALID_KS", e.code
    print(f"refused session: {e.code}")

print("official client ok")
