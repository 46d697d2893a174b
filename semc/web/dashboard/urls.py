"""URL patterns of the web dashboard (mounted at the site root): every id is an integer, every kind
and asset name is checked against a fixed list by its view."""

from django.urls import path

from semc.web.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.sessions, name="sessions"),
    path("sessions/fragment/", views.sessions_fragment, name="sessions_fragment"),
    path("session/<int:session_id>/", views.session, name="session"),
    path("session/<int:session_id>/fragment/", views.session_fragment, name="session_fragment"),
    path("session/<int:session_id>/plot/<slug:kind>.png", views.session_plot, name="session_plot"),
    path("exposure/<int:image_id>/<slug:kind>.png", views.exposure_picture, name="exposure_picture"),
    path("ledger/<int:line_id>/requeue/", views.requeue, name="requeue"),
    path("assets/<str:name>", views.asset, name="asset"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]
