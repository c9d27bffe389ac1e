# Turning a spec into a gateway binary.
#
# sluice_add_spec_library(NAME SPEC) runs `sluicec build SPEC -o DIR`, then
# re2c on the generated matcher, and compiles both into a static library
# NAME that defines `sl_spec`. sluice_add_gateway(NAME SPEC) links such a
# library with the runtime into an executable. A spec change therefore
# regenerates and recompiles two small files and relinks; nothing else.
# Both take `GENERATOR target`: a test tool run in sluicec's place, with
# the same arguments (tests/e2e/mock_spec.c).
function(sluice_add_spec_library name spec)
  cmake_parse_arguments(G "" "GENERATOR" "" ${ARGN})
  if(NOT G_GENERATOR)
    set(G_GENERATOR sluicec)
  endif()
  get_filename_component(spec_abs "${spec}" ABSOLUTE BASE_DIR "${CMAKE_SOURCE_DIR}")
  set(gen "${CMAKE_CURRENT_BINARY_DIR}/${name}.gen")
  add_custom_command(
    OUTPUT "${gen}/sluice_table.c" "${gen}/sluice_models.re"
    COMMAND ${G_GENERATOR} build "${spec_abs}" -o "${gen}" --quiet
    DEPENDS ${G_GENERATOR} "${spec_abs}"
    COMMENT "${G_GENERATOR} build ${spec}"
    VERBATIM)
  add_custom_command(
    OUTPUT "${gen}/sluice_models.c"
    COMMAND ${RE2C} -W -i --no-generation-date --no-version -o "${gen}/sluice_models.c" "${gen}/sluice_models.re"
    DEPENDS "${gen}/sluice_models.re"
    COMMENT "re2c model matcher for ${spec}"
    VERBATIM)
  add_library(${name} STATIC "${gen}/sluice_table.c" "${gen}/sluice_models.c")
  target_include_directories(${name} PRIVATE "${CMAKE_SOURCE_DIR}/runtime")
endfunction()

function(sluice_add_gateway name spec)
  sluice_add_spec_library(${name}_spec "${spec}" ${ARGN})
  add_executable(${name} $<TARGET_OBJECTS:sluice_main>)
  target_link_libraries(${name} PRIVATE sluice_core ${name}_spec sluice_core)
endfunction()
