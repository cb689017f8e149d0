# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

# The README's two commands: `make demo` and `make test`. Run them as root
# on Debian 12; each installs what it needs first.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export BMI_VENV := $(VENV)
# The lab's CLI (tools/lab): start, stop, status [SERVICE...].
LAB = $(VENV)/bin/python -m tools.lab
SHELL_SCRIPTS = $(shell find tools -name '*.sh') tools/bench .ci/run

.PHONY: test demo deps unit functional services-start services-stop \
        genconfig pep8 bench soak clean

test:
	tools/run-tests.sh

demo:
	tools/demo.sh

deps:
	tools/install-deps.sh base

unit: deps
	BMI_TEST_PATH=./tests/unit $(VENV)/bin/stestr run

# Functional tests alone, inside the lab's network namespace, against the
# services started with `make services-start` (stop them with `make
# services-stop`).
functional: deps
	$(LAB) exec -- env BMI_TEST_PATH=./tests/functional \
	    $(VENV)/bin/stestr run --concurrency 1

services-start: deps
	$(LAB) start

services-stop:
	@if [ -x $(VENV)/bin/python ]; then $(LAB) stop; fi

genconfig: deps
	$(VENV)/bin/oslo-config-generator --config-file etc/bmi-config-generator.conf
	$(VENV)/bin/oslo-config-generator \
	    --config-file etc/ml2-bmi-hil-config-generator.conf

pep8: deps
	$(VENV)/bin/flake8 bmi_driver tests tools
	$(VENV)/bin/bashate $(SHELL_SCRIPTS)

bench: deps
	tools/bench

# The fault soak (issue 12): SOAK_CYCLES=N (default 200) make soak.
soak: deps
	tools/soak.sh

clean: services-stop
	rm -rf .state .stestr
