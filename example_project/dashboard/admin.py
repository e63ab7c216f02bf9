from django.contrib import admin

from example_project.dashboard.models import Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["name", "value", "updated_at"]
    list_editable = ["value"]
    fields = ["name", "value"]
