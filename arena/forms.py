from django import forms

from arena.models import Contestant, Winner


class PromptField(forms.CharField):
    """A prompt's text: longer than `max_length` is refused with a message, never cut. The
    browser's `maxlength` would cut a pasted prompt silently; the page counts characters
    instead (`data-limit`, static/js/arena.js) and says when there are too many."""

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        attrs["data-limit"] = str(self.max_length)
        return attrs


class TryModelForm(forms.Form):
    contestant = forms.ModelChoiceField(
        queryset=Contestant.objects.battling(), to_field_name="name", empty_label=None
    )
    prompt = PromptField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Ask the model something..."}),
        max_length=20_000,
        strip=True,
    )


class PromptForm(forms.Form):
    prompt = PromptField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Type a prompt and press Send"}),
        max_length=20_000,
        strip=True,
    )


class NamedBattleForm(PromptForm):
    contestant_a = forms.ModelChoiceField(
        queryset=Contestant.objects.battling(), to_field_name="name", label="Model A"
    )
    contestant_b = forms.ModelChoiceField(
        queryset=Contestant.objects.battling(), to_field_name="name", label="Model B"
    )

    def clean(self):
        data = super().clean()
        if data.get("contestant_a") and data.get("contestant_a") == data.get("contestant_b"):
            raise forms.ValidationError("Pick two different models.")
        return data


class DirectChatForm(PromptForm):
    contestant_a = forms.ModelChoiceField(
        queryset=Contestant.objects.battling(),
        to_field_name="name",
        label="Model",
        empty_label=None,
    )


class VoteForm(forms.Form):
    winner = forms.ChoiceField(choices=Winner.choices)


class BattleFileForm(forms.Form):
    file = forms.FileField(
        help_text="CSV, JSONL or a JSON array (optionally .gz) with model_a, model_b, winner."
    )
    create_unknown = forms.BooleanField(
        required=False,
        label="Register unknown model names",
        help_text="Names not yet in the registry become inactive external contestants. Left "
        "unticked, a file with such names is refused with the list.",
    )


class LeaderboardFilterForm(forms.Form):
    category = forms.CharField(required=False)
    style_control = forms.BooleanField(required=False, label="Style control")
    include_annotation = forms.BooleanField(required=False, label="Include annotation rankings")
    q = forms.CharField(required=False, label="Search")
