# codec_fuzz: libFuzzer target for the tensor codec's decoder (and encoder round trips).
# It compiles codec.cc itself instead of linking noloco_trainer_core: the codec is torch-free, and
# libtorch 1.13's headers do not compile with clang 14 in C++20 mode (incomplete c10::IValue in
# std::vector), which breaks every torch translation unit of the library under the fuzz preset.
add_executable(codec_fuzz ${CMAKE_CURRENT_LIST_DIR}/codec_fuzz.cc ${PROJECT_SOURCE_DIR}/trainer/core/codec.cc
  ${PROJECT_SOURCE_DIR}/trainer/core/codec_stream.cc)
target_link_libraries(codec_fuzz PRIVATE noloco_common PkgConfig::ZSTD PkgConfig::XXHASH)
target_link_options(codec_fuzz PRIVATE -fsanitize=fuzzer)
