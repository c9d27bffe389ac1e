# A Debian package for a gateway: sluice_add_deb(TARGET GATEWAY SPEC NAME)
# adds a target that runs packaging/build-deb on the gateway executable
# GATEWAY (built from SPEC) and sluicec, and writes
# ${CMAKE_BINARY_DIR}/sluice-NAME_VERSION_ARCH.deb. The top-level build adds
# `deb` for SLUICE_SPEC; set SLUICE_DEB_NAME / SLUICE_DEB_VERSION to name it.
function(sluice_add_deb target gateway spec name)
  get_filename_component(spec_abs "${spec}" ABSOLUTE BASE_DIR "${CMAKE_SOURCE_DIR}")
  set(version "${PROJECT_VERSION}")
  if(SLUICE_DEB_VERSION)
    set(version "${SLUICE_DEB_VERSION}")
  endif()
  add_custom_target(${target}
    COMMAND "${CMAKE_SOURCE_DIR}/packaging/build-deb"
      --name "${name}" --version "${version}"
      --gateway "$<TARGET_FILE:${gateway}>" --sluicec "$<TARGET_FILE:sluicec>"
      --spec "${spec_abs}" --schema "${CMAKE_SOURCE_DIR}/schemas/sluice.schema.json"
      --out "${CMAKE_BINARY_DIR}"
    DEPENDS ${gateway} sluicec
    COMMENT "Debian package sluice-${name}_${version} for ${spec}"
    VERBATIM)
endfunction()
