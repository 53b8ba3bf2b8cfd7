from django import forms

from arena.models import Contestant


class TryModelForm(forms.Form):
    contestant = forms.ModelChoiceField(
        queryset=Contestant.objects.active(), to_field_name="name", empty_label=None
    )
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Ask the model something..."}),
        max_length=20_000,
        strip=True,
    )
