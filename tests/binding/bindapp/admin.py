from django.contrib import admin

from tests.binding.bindapp.models import IntegerValue


@admin.register(IntegerValue)
class IntegerValueAdmin(admin.ModelAdmin):
    fields = ["name", "value", "room"]
