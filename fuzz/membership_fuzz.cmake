# libFuzzer target for p2p/membership (gossip decode + merge): see membership_fuzz.cc.
add_executable(membership_fuzz ${CMAKE_CURRENT_LIST_DIR}/membership_fuzz.cc)
target_link_libraries(membership_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(membership_fuzz PRIVATE -fsanitize=fuzzer)
