# Compiles an eBPF C program against a vmlinux.h generated from the build machine's kernel BTF
# (CO-RE relocations make the object portable) and generates its libbpf skeleton header.
find_program(BPFTOOL_EXECUTABLE bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
find_program(BPF_CLANG_EXECUTABLE clang REQUIRED)
set(PALISADE_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "Kernel BTF used to generate vmlinux.h")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "unsupported architecture for eBPF: ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(BPF_GENERATED_DIR ${CMAKE_BINARY_DIR}/bpf-generated)
file(MAKE_DIRECTORY ${BPF_GENERATED_DIR})

add_custom_command(
  OUTPUT ${BPF_GENERATED_DIR}/vmlinux.h
  COMMAND sh -c "\"$0\" btf dump file \"$1\" format c > \"$2\"" ${BPFTOOL_EXECUTABLE} ${PALISADE_VMLINUX_BTF} ${BPF_GENERATED_DIR}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${PALISADE_VMLINUX_BTF}"
  VERBATIM)
# Owns the generated header so that skeletons in other directories can depend on it.
add_custom_target(bpf_vmlinux_h DEPENDS ${BPF_GENERATED_DIR}/vmlinux.h)

# bpf_skeleton(<name> <source.bpf.c> [DEPENDS headers...]) produces ${BPF_GENERATED_DIR}/<name>.skel.h
function(bpf_skeleton name source)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  set(object ${BPF_GENERATED_DIR}/${name}.bpf.o)
  set(skeleton ${BPF_GENERATED_DIR}/${name}.skel.h)
  get_filename_component(source_dir ${source} DIRECTORY)
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${BPF_CLANG_EXECUTABLE} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -Wall -Werror -I${BPF_GENERATED_DIR} -I${source_dir}
            -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${source} -o ${object}
    DEPENDS ${source} ${ARG_DEPENDS} ${BPF_GENERATED_DIR}/vmlinux.h
    COMMENT "Compiling eBPF program ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skeleton}
    COMMAND sh -c "\"$0\" gen skeleton \"$1\" name \"$2\" > \"$3\"" ${BPFTOOL_EXECUTABLE} ${object} ${name} ${skeleton}
    DEPENDS ${object}
    COMMENT "Generating libbpf skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skeleton DEPENDS ${skeleton})
  add_dependencies(${name}_skeleton bpf_vmlinux_h)
endfunction()
