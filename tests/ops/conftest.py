"""The explain test routes leads through a real router service: it borrows the what-if kit."""

from tests.router.whatif.conftest import router, whatif_settings  # noqa: F401
