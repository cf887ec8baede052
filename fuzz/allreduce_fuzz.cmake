# allreduce_fuzz: libFuzzer target for the ring all-reduce's receive side (see allreduce_fuzz.cc).
# Compiles the torch- and Asio-free sources directly (the ring's value encodings are the codec's).
add_executable(allreduce_fuzz ${CMAKE_CURRENT_LIST_DIR}/allreduce_fuzz.cc
  ${PROJECT_SOURCE_DIR}/trainer/node/allreduce_wire.cc
  ${PROJECT_SOURCE_DIR}/trainer/node/allreduce_ring.cc
  ${PROJECT_SOURCE_DIR}/trainer/core/codec.cc)
target_link_libraries(allreduce_fuzz PRIVATE noloco_common PkgConfig::ZSTD)
target_link_options(allreduce_fuzz PRIVATE -fsanitize=fuzzer)
