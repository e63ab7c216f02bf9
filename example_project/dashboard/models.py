from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Item(models.Model):
    """One figure on the dashboard. Every save reaches the open dashboards (see bindings.py)."""

    name = models.CharField(max_length=60, unique=True)
    value = models.IntegerField(default=0, validators=[MinValueValidator(-1_000_000),
                                                       MaxValueValidator(1_000_000)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} = {self.value}"
