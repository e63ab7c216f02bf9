from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Tag(models.Model):
    label = models.CharField(max_length=30, unique=True)


class IntegerValue(models.Model):
    """A named number in a room; the room decides which sockets hear about it."""

    name = models.CharField(max_length=100, unique=True)
    value = models.IntegerField(default=0, validators=[MinValueValidator(0),
                                                       MaxValueValidator(1000)])
    room = models.CharField(max_length=50, default="lobby")
    secret = models.CharField(max_length=50, blank=True, default="")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL)
    tags = models.ManyToManyField(Tag, blank=True)

    @property
    def doubled(self) -> int:
        return self.value * 2

    def describe(self) -> str:
        return f"{self.name}={self.value}"
