# The bundled default configuration, compiled in from config/palisade.yaml: sets OUT to the
# generated source (used by the agent and by the configuration fuzzer).
function(palisade_default_config OUT)
  file(READ ${PROJECT_SOURCE_DIR}/config/palisade.yaml PALISADE_DEFAULT_CONFIG)
  configure_file(${PROJECT_SOURCE_DIR}/node-agent/src/agent/default_config.cpp.in
    ${CMAKE_CURRENT_BINARY_DIR}/default_config.cpp @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/config/palisade.yaml)
  set(${OUT} ${CMAKE_CURRENT_BINARY_DIR}/default_config.cpp PARENT_SCOPE)
endfunction()
