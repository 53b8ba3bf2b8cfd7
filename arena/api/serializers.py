from rest_framework import serializers

from arena.backends import ROLES
from arena.models import Contestant, Generation


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
    seed = serializers.IntegerField(required=False)


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
