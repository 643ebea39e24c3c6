# Copies one of containerd's .proto files with its gogoproto and containerd.plugin options
# removed: protoc's C++ generator refuses `import weak` of gogo.proto, and these options only
# steer Go code generation. The wire format is unchanged. Run as: cmake -DIN=.. -DOUT=.. -P
file(READ "${IN}" text)
string(REGEX REPLACE "import weak \"[^\"]*\";\n" "" text "${text}")
string(REGEX REPLACE "\n[ \t]*option \\((gogoproto|containerd\\.plugin)[^;]*;" "" text "${text}")
string(REGEX REPLACE " *\\[\\(gogoproto[^]]*\\]" "" text "${text}")
file(WRITE "${OUT}" "${text}")
