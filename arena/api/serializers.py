from django.conf import settings
from rest_framework import serializers

from arena import selectors
from arena.backends import ROLES
from arena.models import Contestant, Generation

# How a contestant is served and how it decodes: admins only. A system prompt or an endpoint
# would tie a battle's answers to a model; a folder or URL describes the servers.
CONTESTANT_INTERNAL_FIELDS = (
    "model_path",
    "endpoint_url",
    "endpoint_model",
    "request_timeout_s",
    "max_retries",
    "system_prompt",
    "temperature",
    "top_p",
    "max_new_tokens",
)


def _sees_internals(serializer: serializers.BaseSerializer) -> bool:
    request = serializer.context.get("request")
    return request is not None and selectors.user_sees_internals(request.user)


# torch.manual_seed takes a 64-bit seed; a non-negative one means the same on every backend.
SEED_MAX = 2**63 - 1


def seed_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=SEED_MAX, **kwargs)


def max_new_tokens_cap(contestant: Contestant) -> int:
    """The most new tokens a request may ask of this contestant."""
    return max(settings.GENERATION_MAX_NEW_TOKENS, contestant.max_new_tokens)


def check_max_new_tokens(contestant: Contestant, value: int | None) -> None:
    cap = max_new_tokens_cap(contestant)
    if value is not None and value > cap:
        raise serializers.ValidationError(
            [f"Ensure this value is less than or equal to {cap} for {contestant.name}."]
        )


class ContestantSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.all(), allow_null=True, required=False
    )
    endpoint_api_key = serializers.CharField(write_only=True, required=False, allow_blank=True)

    class Meta:
        model = Contestant
        fields = [
            "id",
            "name",
            "display_name",
            "organization",
            "license",
            "description",
            "parent",
            "is_active",
            "backend",
            "model_path",
            "endpoint_url",
            "endpoint_model",
            "endpoint_api_key",
            "request_timeout_s",
            "max_retries",
            "system_prompt",
            "temperature",
            "top_p",
            "max_new_tokens",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def to_representation(self, instance) -> dict:
        data = super().to_representation(instance)
        if not _sees_internals(self):
            for name in CONTESTANT_INTERNAL_FIELDS:
                data.pop(name, None)
        return data

    def validate(self, attrs):
        # Run the model's own cross-field checks (backend needs its fields) on the merged values.
        instance = Contestant(**{**self._current_values(), **attrs})
        try:
            instance.clean()
        except Exception as exc:  # ValidationError carries a field -> message dict
            raise serializers.ValidationError(getattr(exc, "message_dict", str(exc))) from None
        return attrs

    def _current_values(self) -> dict:
        if self.instance is None:
            return {}
        return {
            f: getattr(self.instance, f) for f in self.Meta.fields if f not in ("id", "created_at")
        }


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class GenerationCreateSerializer(serializers.Serializer):
    contestant = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.active()
    )
    messages = MessageSerializer(many=True, allow_empty=False, max_length=200)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False)
    max_new_tokens = serializers.IntegerField(min_value=1, max_value=8192, required=False)
    seed = seed_field(required=False)

    def validate(self, attrs):
        try:
            check_max_new_tokens(attrs["contestant"], attrs.get("max_new_tokens"))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"max_new_tokens": exc.detail}) from None
        return attrs


class GenerationSerializer(serializers.ModelSerializer):
    contestant = serializers.SlugRelatedField(slug_field="name", read_only=True)
    latency_s = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Generation
        fields = [
            "id",
            "contestant",
            "messages",
            "settings",
            "status",
            "output",
            "error",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "latency_s",
        ]
        read_only_fields = fields

    def to_representation(self, instance) -> dict:
        data = super().to_representation(instance)
        if not _sees_internals(self):
            # The settings copy the contestant's system prompt and decoding; a failure's reason
            # may name an endpoint or a folder.
            data.pop("settings", None)
            if data["error"]:
                data["error"] = selectors.ANSWER_FAILED
        return data


class BattleCreateSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=20_000)
    mode = serializers.ChoiceField(
        choices=["anonymous", "side_by_side", "direct"], default="anonymous"
    )
    contestant_a = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.battling(), required=False
    )
    contestant_b = serializers.SlugRelatedField(
        slug_field="name", queryset=Contestant.objects.battling(), required=False
    )


class VoteSerializer(serializers.Serializer):
    winner = serializers.ChoiceField(choices=["model_a", "model_b", "tie", "both_bad"])


class _AnswerSerializer(serializers.Serializer):
    status = serializers.CharField()
    output = serializers.CharField()
    error = serializers.CharField()


class _TurnSerializer(serializers.Serializer):
    user_message = serializers.CharField()
    a = _AnswerSerializer(allow_null=True)
    b = _AnswerSerializer(allow_null=True)


def _answer_error(error: str, details: bool) -> str:
    return error if details or not error else selectors.ANSWER_FAILED


class BattleSerializer(serializers.Serializer):
    """A battle as its voter sees it: `model_a`/`model_b` are null until they may be known."""

    id = serializers.UUIDField(source="public_id")
    mode = serializers.CharField()
    category = serializers.CharField()
    turns = serializers.SerializerMethodField()
    ready_to_vote = serializers.SerializerMethodField()
    winner = serializers.CharField()
    excluded_reason = serializers.CharField()
    model_a = serializers.SerializerMethodField()
    model_b = serializers.SerializerMethodField()

    def _revealed(self, battle) -> bool:
        return battle.is_voted or battle.mode != "anonymous"

    def get_model_a(self, battle) -> str | None:
        return battle.contestant_a.name if self._revealed(battle) else None

    def get_model_b(self, battle) -> str | None:
        if battle.contestant_b is None or not self._revealed(battle):
            return None
        return battle.contestant_b.name

    def get_turns(self, battle) -> list[dict]:
        from arena.selectors import battle_turns

        turns = battle_turns(battle=battle)
        details = _sees_internals(self)

        def answer(generation):
            # As on the battle page: a side being written shows its text so far.
            if generation is None:
                return None
            return {
                "status": generation.status,
                "output": generation.output,
                "error": _answer_error(generation.error, details),
            }

        return [
            {
                "user_message": t.user_message,
                "a": answer(t.generation_a),
                "b": answer(t.generation_b),
            }
            for t in turns
        ]

    def get_ready_to_vote(self, battle) -> bool:
        from arena.selectors import battle_view

        return battle_view(battle=battle)["can_vote"]

    def to_representation(self, battle) -> dict:
        # The fields above, written out: a vote answers with this, and DRF's generic path
        # (a deep copy of every field for each battle) costs more than the rest of the reply.
        return {
            "id": str(battle.public_id),
            "mode": battle.mode,
            "category": battle.category,
            "turns": self.get_turns(battle),
            "ready_to_vote": self.get_ready_to_vote(battle),
            "winner": battle.winner,
            "excluded_reason": battle.excluded_reason,
            "model_a": self.get_model_a(battle),
            "model_b": self.get_model_b(battle),
        }


class LeaderboardRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    display_name = serializers.CharField()
    rating = serializers.FloatField()
    ci_lower = serializers.FloatField()
    ci_upper = serializers.FloatField()
    votes = serializers.IntegerField()
    rank_ub = serializers.IntegerField()
    rank_spread = serializers.ListField(child=serializers.IntegerField())
    elo = serializers.FloatField(required=False)
    organization = serializers.CharField()
    license = serializers.CharField()


class LeaderboardSerializer(serializers.Serializer):
    category = serializers.CharField()
    style_control = serializers.BooleanField()
    include_annotation = serializers.BooleanField()
    computed_at = serializers.DateTimeField()
    battles = serializers.IntegerField()
    bootstrap_rounds = serializers.IntegerField()
    style_coefficients = serializers.DictField(child=serializers.FloatField())
    style_battles = serializers.IntegerField(help_text="Battles that carry style features.")
    rows = LeaderboardRowSerializer(many=True, help_text="Models with at least ARENA_MIN_VOTES.")
    provisional = LeaderboardRowSerializer(
        many=True, help_text="Models with fewer votes, ranked among themselves."
    )
