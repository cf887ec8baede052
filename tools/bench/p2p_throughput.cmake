# Loopback bulk-transfer throughput: ChaCha20-Poly1305 limit, plain TCP, our TCP+Noise+yamux host.
add_executable(p2p_throughput ${CMAKE_CURRENT_LIST_DIR}/p2p_throughput.cc)
target_include_directories(p2p_throughput PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(p2p_throughput PRIVATE noloco_common PkgConfig::SODIUM Threads::Threads)
