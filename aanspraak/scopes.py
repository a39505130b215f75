"""OAuth2 scopes backend: a client may obtain only the scopes it was registered with, and gets
all of them when it asks for none."""

from oauth2_provider.scopes import BaseScopes

from .choices import Scope


class ChainScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return {scope.value: scope.label for scope in Scope}

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        if application is None:
            return list(self.get_all_scopes())
        return sorted(application.scope_set)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return self.get_available_scopes(application, request)
