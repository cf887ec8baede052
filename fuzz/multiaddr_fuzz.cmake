# libFuzzer target for p2p/multiaddr: see multiaddr_fuzz.cc and docs/fuzzing.md.
add_executable(multiaddr_fuzz ${CMAKE_CURRENT_LIST_DIR}/multiaddr_fuzz.cc)
target_link_libraries(multiaddr_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(multiaddr_fuzz PRIVATE -fsanitize=fuzzer)
