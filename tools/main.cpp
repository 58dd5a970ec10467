// aciq command-line entry point (placeholder until subcommands land).
#include <cstdio>
int main() { std::puts("aciq"); return 0; }
