# The kit's container image: the pinned Ray image + torch + the kit's runtime pins + the `kit` package.
# RayJob, RayService, TrainJob, InferenceService and the model Job of stage 09 all run it.
#
# Build it with `make image` (CPU) or `make image VARIANT=gpu`: the base image, the torch index and every
# pin arrive as --build-arg values printed by `python kit/versions.py image-args cpu|gpu`, so this file
# holds no version of its own (tests/test_image.py checks that). Nothing here was built on the machines
# this kit is developed on (no Docker engine there): see the README's "Container image" section.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL
ARG TORCH_REQUIREMENT
ARG REQUIREMENTS

# Ray's image runs as uid 1000 ("ray") and owns its Python: install as that user, no root needed.
RUN test -n "${TORCH_INDEX_URL}" && test -n "${TORCH_REQUIREMENT}" && test -n "${REQUIREMENTS}" \
    || { echo "build with 'make image': the versions come from kit/versions.py" >&2; exit 1; }
# torch first, from its variant's index (CPU-only or CUDA wheels); the other pins then find it installed.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "${TORCH_REQUIREMENT}" \
    && pip install --no-cache-dir ${REQUIREMENTS} "${TORCH_REQUIREMENT}"

COPY --chown=1000:100 pyproject.toml README.md /opt/kit/
COPY --chown=1000:100 kit /opt/kit/kit
RUN pip install --no-cache-dir --no-deps /opt/kit \
    && python -m kit.machine.image_check

USER 1000
WORKDIR /home/ray
