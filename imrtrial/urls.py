from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import twofactor_views, views
from .forms import LoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=LoginForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The header's language switcher (ours first: it stores a signed-in user's choice too).
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("account/preferences/", views.preferences, name="preferences"),
    path("account/two-factor/", include(twofactor_views)),
    path("", include("api.account")),
    path("api/", include("api.urls")),
    path("trials/<slug:trial_key>/audit/", views.audit_trail, name="audit_trail"),
    path("trials/<slug:trial_key>/access-log/", views.access_log, name="access_log"),
    path("trials/", include("assessments.urls")),
    path("trials/", include("randomization.urls")),
    path("trials/", include("fidelity.urls")),
    path("trials/", include("safety.urls")),
    path("trials/", include("signoff.urls")),
    path("trials/", include("monitoring.urls")),
    path("trials/", include("exports.urls")),
    path("trials/", include("quality.urls")),
    path("trials/", include("registers.urls")),
    path("", include("staff.urls")),
    path("", include("selfreport.urls")),
    path("admin/", admin.site.urls),
]

# JSON under /api/ (the web API's paths), the site's own pages elsewhere.
handler400 = "api.views.bad_request"
handler404 = "api.views.not_found"
