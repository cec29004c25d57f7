"""The forms of the demo page: one per way of calling a task."""

from __future__ import annotations

from django import forms

SMALL_INT = {"min_value": -1_000_000, "max_value": 1_000_000}


class NoInputForm(forms.Form):
    """For tasks that take no argument."""


class TwoNumbersForm(forms.Form):
    a = forms.IntegerField(initial=2, **SMALL_INT)
    b = forms.IntegerField(initial=3, **SMALL_INT)


class CountForm(forms.Form):
    n = forms.IntegerField(initial=5, min_value=0, max_value=50)


class NameForm(forms.Form):
    name = forms.CharField(initial="world", max_length=100)


class TextForm(forms.Form):
    text = forms.CharField(initial="hello qtasks", max_length=200)


class ReasonForm(forms.Form):
    reason = forms.CharField(initial="failing on purpose", max_length=200)


class DelayedAddForm(forms.Form):
    """``add(a, b)`` enqueued with a countdown: it waits in the queue, delayed."""

    a = forms.IntegerField(initial=2, **SMALL_INT)
    b = forms.IntegerField(initial=3, **SMALL_INT)
    countdown = forms.IntegerField(initial=60, min_value=1, max_value=24 * 3600, label="countdown (s)")


class LongJobForm(forms.Form):
    steps = forms.IntegerField(initial=20, min_value=1, max_value=600)
    seconds_per_step = forms.FloatField(initial=1.0, min_value=0.05, max_value=10.0, label="seconds/step")


class TransactionForm(forms.Form):
    """``add(a, b)`` enqueued inside ``transaction.atomic()``, which may be rolled back."""

    a = forms.IntegerField(initial=20, **SMALL_INT)
    b = forms.IntegerField(initial=22, **SMALL_INT)
    roll_back = forms.BooleanField(required=False, label="roll the transaction back")


class WaitForm(forms.Form):
    """``slow_hello(name)`` enqueued with ``timeout``: the view waits for its result."""

    name = forms.CharField(initial="world", max_length=100)
    timeout = forms.FloatField(initial=5.0, min_value=0.1, max_value=30.0, label="timeout (s)")


class CancelForm(forms.Form):
    reason = forms.CharField(initial="cancelled from the demo page", max_length=200, required=False)


class TenantForm(forms.Form):
    tenant_id = forms.IntegerField(initial=7, min_value=1, max_value=1_000_000, label="tenant")


class TenantSyncsForm(forms.Form):
    """Several ``sync_tenant`` calls for one tenant: they wait for each other."""

    tenant_id = forms.IntegerField(initial=7, min_value=1, max_value=1_000_000, label="tenant")
    count = forms.IntegerField(initial=3, min_value=1, max_value=10)
    seconds = forms.FloatField(initial=2.0, min_value=0.1, max_value=10.0, label="seconds each")


class RatedCallsForm(forms.Form):
    count = forms.IntegerField(initial=10, min_value=1, max_value=30)


class PauseForm(forms.Form):
    reason = forms.CharField(initial="paused from the demo page", max_length=200, required=False)
