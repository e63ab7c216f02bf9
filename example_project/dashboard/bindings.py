"""The dashboard's data binding: every saved or deleted ``Item`` becomes an event on the
``items`` stream of every dashboard socket, and those sockets may edit items in turn."""

from channels.binding.base import DELETE
from channels.binding.websockets import WebsocketBinding

#: The group every open dashboard is in.
DASHBOARD_GROUP = "dashboard"


class ItemBinding(WebsocketBinding):
    model = "dashboard.Item"
    stream = "items"
    # updated_at is sent but never written by a client: auto_now makes it not editable.
    fields = ["name", "value", "updated_at"]

    @classmethod
    def group_names(cls, instance):
        return [DASHBOARD_GROUP]

    def has_permission(self, user, action, pk):
        if not user.is_authenticated:
            return False
        return action != DELETE or user.is_staff
