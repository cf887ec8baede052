# node_wire_fuzz: libFuzzer target for the training node's wire formats (trainer/node
# run_manifest, exchange_wire, state_wire): see node_wire_fuzz.cc. Like codec_fuzz it compiles
# the torch-free sources directly instead of linking noloco_trainer_node, whose torch units do not
# compile with clang under the fuzz preset. model.cc (presets, for manifest validation) and
# codec.cc (mode names) are torch-free too.
add_executable(node_wire_fuzz ${CMAKE_CURRENT_LIST_DIR}/node_wire_fuzz.cc
  ${PROJECT_SOURCE_DIR}/trainer/node/run_manifest.cc
  ${PROJECT_SOURCE_DIR}/trainer/node/exchange_wire.cc
  ${PROJECT_SOURCE_DIR}/trainer/node/state_wire.cc
  ${PROJECT_SOURCE_DIR}/trainer/core/model.cc
  ${PROJECT_SOURCE_DIR}/trainer/core/codec.cc)
target_link_libraries(node_wire_fuzz PRIVATE noloco_common nlohmann_json::nlohmann_json PkgConfig::ZSTD)
target_link_options(node_wire_fuzz PRIVATE -fsanitize=fuzzer)
