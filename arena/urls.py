from django.urls import path

from arena import views
from arena.models import BattleMode

app_name = "arena"
urlpatterns = [
    path("", views.battle_new, name="battle-new"),
    path("side-by-side/", views.battle_new, {"mode": BattleMode.SIDE_BY_SIDE}, name="side-by-side"),
    path("chat/", views.battle_new, {"mode": BattleMode.DIRECT}, name="chat"),
    path("battles/<uuid:public_id>/", views.battle_detail, name="battle"),
    path("battles/<uuid:public_id>/vote/", views.battle_vote, name="vote"),
    path("battles/<uuid:public_id>/continue/", views.battle_continue, name="continue"),
    path("battles/<uuid:public_id>/regenerate/", views.battle_regenerate, name="regenerate"),
    path("battles/<uuid:public_id>/cancel/", views.battle_cancel, name="cancel"),
    path("leaderboard/", views.leaderboard_page, name="leaderboard"),
    path("battle-files/", views.battle_files_page, name="battle-files"),
    path("battle-files/export/", views.battle_export, name="battle-export"),
    path("models/", views.models_page, name="models"),
    path("generations/<int:generation_id>/", views.generation_fragment, name="generation"),
]
