"""Pin paging: `before=<pinned_at>` of a page's last item is exclusive (facts 2.8)."""

from __future__ import annotations

from tests.conformance.conftest import call, post_messages
from tests.conformance.openapi import CheckedSession


async def pin(api: CheckedSession, channel: str, message: str) -> int:
    return (await call(api, "PUT", f"/channels/{channel}/messages/pins/{message}")).status


async def test_pins_page_newest_first_with_before(api: CheckedSession, channel_id: str) -> None:
    ids = await post_messages(api, channel_id, 3)
    for message in ids:
        assert await pin(api, channel_id, message) == 204
    first = (await api.get(f"/channels/{channel_id}/messages/pins", params={"limit": "2"})).json()
    assert first["has_more"] is True
    assert [i["message"]["id"] for i in first["items"]] == [ids[2], ids[1]]
    rest = await api.get(
        f"/channels/{channel_id}/messages/pins",
        params={"limit": "2", "before": first["items"][-1]["pinned_at"]},
    )
    assert [i["message"]["id"] for i in rest.json()["items"]] == [ids[0]]
    assert rest.json()["has_more"] is False
