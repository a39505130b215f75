"""Admin for parties, clients, access tokens, schools, consent and products. Secrets are never
shown: the hub's credentials towards a party (secret, private key) are write-only, client
secrets are hashed and excluded, access tokens are stored as their SHA-256 and shown by a
prefix of it (docs/security.md, "Secrets")."""

from django import forms
from django.contrib import admin
from oauth2_provider.admin import AccessTokenAdmin as DotAccessTokenAdmin
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

from .choices import EndpointAuthMethod
from .keys import KeyProblem, load_private_key
from .models import Client, Consent, Party, Product, School, SchoolOrganisationId, WorkerHeartbeat


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value: a form shown again after an error must not put
    the submitted key back into the page (as ``PasswordInput(render_value=False)`` does)."""

    def format_value(self, value):
        return None


class PartyForm(forms.ModelForm):
    # Write-only: an empty field keeps the stored secret.
    new_endpoint_client_secret = forms.CharField(
        label="Endpoint client secret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored secret. Never displayed.",
    )
    new_endpoint_private_key = forms.CharField(
        label="Endpoint private key",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="private_key_jwt: the hub's PEM private key. Leave empty to keep the stored "
        "key. Never displayed.",
    )

    class Meta:
        model = Party
        exclude = ["endpoint_client_secret", "endpoint_private_key"]

    def clean(self):
        """A new key must fit the algorithm; private_key_jwt needs a key (docs/registry.md)."""
        cleaned = super().clean()
        method = cleaned.get("endpoint_auth_method")
        algorithm = cleaned.get("endpoint_algorithm")
        key = cleaned.get("new_endpoint_private_key") or (
            self.instance.endpoint_private_key
            if method == EndpointAuthMethod.PRIVATE_KEY_JWT
            else ""
        )
        if method == EndpointAuthMethod.PRIVATE_KEY_JWT and not key:
            self.add_error("new_endpoint_private_key", "private_key_jwt needs a private key")
        elif key and algorithm:
            try:
                load_private_key(key, algorithm)
            except KeyProblem as exc:
                self.add_error("new_endpoint_private_key", f"the key {exc}")
        return cleaned

    def save(self, commit=True):
        party = super().save(commit=False)
        if self.cleaned_data.get("new_endpoint_client_secret"):
            party.endpoint_client_secret = self.cleaned_data["new_endpoint_client_secret"]
        if self.cleaned_data.get("new_endpoint_private_key"):
            party.endpoint_private_key = self.cleaned_data["new_endpoint_private_key"]
        if commit:
            party.save()
        return party


class ClientInline(admin.TabularInline):
    model = Client
    fields = ["client_id", "name", "allowed_scopes"]
    readonly_fields = ["client_id", "name", "allowed_scopes"]
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Party)
class PartyAdmin(admin.ModelAdmin):
    form = PartyForm
    list_display = ["name", "roles_display", "portal_id", "endpoint_base_url"]
    list_filter = ["is_seller", "is_licensor", "is_portal", "is_dashboard", "is_school_admin"]
    search_fields = ["name", "portal_id"]
    inlines = [ClientInline]

    @admin.display(description="roles")
    def roles_display(self, party: Party) -> str:
        return ", ".join(party.roles)


# django-oauth-toolkit registers its own admin for the (swapped) Application model; ours
# shows the party and scopes and never the (hashed) secret.
if admin.site.is_registered(Client):
    admin.site.unregister(Client)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ["client_id", "name", "party", "allowed_scopes"]
    list_filter = ["party"]
    search_fields = ["client_id", "name", "party__name"]
    exclude = ["client_secret", "user"]
    readonly_fields = ["client_id"]


# Access tokens: view and revoke (DOT's action), never edit. The hub issues client-credentials
# tokens only: no refresh tokens, grants or ID tokens exist, so their admins are removed.
for model in (AccessToken, RefreshToken, Grant, IDToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(AccessToken)
class AccessTokenAdmin(DotAccessTokenAdmin):
    list_display = ["pk", "masked_token", "application", "scope", "expires", "created"]
    fields = ["masked_token", "application", "scope", "expires", "created", "updated"]
    readonly_fields = fields
    raw_id_fields = []

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="token")
    def masked_token(self, obj: AccessToken | None) -> str:
        # Only the checksum is stored; its first characters identify the row.
        return f"sha256 {obj.token_checksum[:8]}…" if obj is not None else ""


class SchoolOrganisationIdInline(admin.TabularInline):
    model = SchoolOrganisationId
    extra = 0


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0
    autocomplete_fields = ["party"]


@admin.register(School)
class SchoolAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation_master_identifier", "administration"]
    search_fields = [
        "name",
        "organisation_master_identifier",
        "organisation_ids__organisation_id",
    ]
    list_filter = ["administration"]
    inlines = [SchoolOrganisationIdInline, ConsentInline]


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["school", "party", "granted_at"]
    list_filter = ["party"]
    search_fields = ["school__name", "school__organisation_master_identifier", "party__name"]


@admin.register(SchoolOrganisationId)
class SchoolOrganisationIdAdmin(admin.ModelAdmin):
    list_display = ["organisation_id", "organisation_id_type", "school"]
    list_filter = ["organisation_id_type"]
    search_fields = ["organisation_id", "school__name"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["product_id", "name", "licensor"]
    list_filter = ["licensor"]
    search_fields = ["product_id", "name"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "last_seen"]
