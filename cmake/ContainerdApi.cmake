# The containerd gRPC client, generated at build time from containerd's published .proto files
# (Debian: golang-github-containerd-containerd-dev). Defines two static libraries:
# containerd_messages (the protobuf messages alone, which the fuzz build decodes without gRPC) and,
# unless CONTAINERD_API_GRPC is OFF, containerd_api (the gRPC service stubs, on top of it).
option(CONTAINERD_API_GRPC "Generate containerd's gRPC service stubs too" ON)
set(CONTAINERD_API_ROOT /usr/share/gocode/src/github.com/containerd/containerd/api
    CACHE PATH "Directory holding containerd's api/ .proto files")
set(_containerd_protos
    services/containers/v1/containers.proto services/tasks/v1/tasks.proto
    services/events/v1/events.proto types/mount.proto types/metrics.proto
    types/descriptor.proto types/task/task.proto events/container.proto events/task.proto)
set(_tree ${CMAKE_BINARY_DIR}/containerd-api)
set(_prefix github.com/containerd/containerd/api)
if(CONTAINERD_API_GRPC)
  find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
endif()

set(_sources)
set(_grpc_sources)
foreach(proto IN LISTS _containerd_protos)
  if(NOT EXISTS ${CONTAINERD_API_ROOT}/${proto})
    message(FATAL_ERROR "containerd API file ${CONTAINERD_API_ROOT}/${proto} is missing: "
                        "install golang-github-containerd-containerd-dev")
  endif()
  set(_copy ${_tree}/${_prefix}/${proto})
  string(REGEX REPLACE "\\.proto$" "" _stem ${_prefix}/${proto})
  set(_generated ${_tree}/${_stem}.pb.cc ${_tree}/${_stem}.pb.h)
  add_custom_command(OUTPUT ${_copy}
    COMMAND ${CMAKE_COMMAND} -DIN=${CONTAINERD_API_ROOT}/${proto} -DOUT=${_copy}
            -P ${PROJECT_SOURCE_DIR}/cmake/strip_gogo.cmake
    DEPENDS ${CONTAINERD_API_ROOT}/${proto} ${PROJECT_SOURCE_DIR}/cmake/strip_gogo.cmake
    COMMENT "Preparing containerd ${proto}")
  list(APPEND _copies ${_copy})
  set(_grpc_args)
  if(CONTAINERD_API_GRPC AND proto MATCHES "^services/")
    list(APPEND _generated ${_tree}/${_stem}.grpc.pb.cc ${_tree}/${_stem}.grpc.pb.h)
    set(_grpc_args --grpc_out=${_tree} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN})
  endif()
  list(APPEND _pending ${proto})
  list(APPEND _outputs_${_stem} ${_generated})
  set(_all_generated_${proto} ${_generated})
  set(_grpc_args_${proto} ${_grpc_args})
endforeach()

# Generate after every file is copied: they import one another.
foreach(proto IN LISTS _pending)
  add_custom_command(OUTPUT ${_all_generated_${proto}}
    COMMAND protobuf::protoc -I${_tree} -I/usr/include --cpp_out=${_tree} ${_grpc_args_${proto}}
            ${_tree}/${_prefix}/${proto}
    DEPENDS ${_copies}
    COMMENT "Generating C++ for containerd ${proto}")
  foreach(f IN LISTS _all_generated_${proto})
    if(f MATCHES "\\.grpc\\.pb\\.cc$")
      list(APPEND _grpc_sources ${f})
    elseif(f MATCHES "\\.cc$")
      list(APPEND _sources ${f})
    endif()
  endforeach()
endforeach()

add_library(containerd_messages STATIC ${_sources})
target_include_directories(containerd_messages SYSTEM PUBLIC ${_tree})
target_link_libraries(containerd_messages PUBLIC protobuf::libprotobuf)
# Generated code is not ours to warn about.
target_compile_options(containerd_messages PRIVATE -w)

if(CONTAINERD_API_GRPC)
  add_library(containerd_api STATIC ${_grpc_sources})
  target_link_libraries(containerd_api PUBLIC containerd_messages gRPC::grpc++)
  target_compile_options(containerd_api PRIVATE -w)
endif()
