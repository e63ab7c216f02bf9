"""The app's binding, written as a Channels 1.1 project writes one."""

from channels.binding.base import DELETE
from channels.binding.websockets import WebsocketBinding


class IntegerValueBinding(WebsocketBinding):
    model = "bindapp.IntegerValue"
    stream = "intval"
    fields = ["name", "value", "room"]

    @classmethod
    def group_names(cls, instance):
        return [f"values-{instance.room}"]

    def has_permission(self, user, action, pk):
        return action != DELETE or user.is_staff
