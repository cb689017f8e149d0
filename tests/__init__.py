# Ironic's test package sets up oslo.service's threading backend, logging and
# the versioned objects: it must be imported before anything else of Ironic.
import ironic.tests.unit  # noqa: F401
