// Replays a fuzz target's corpus with the normal compiler: feeds every file under the given directories to
// LLVMFuzzerTestOneInput. A crash, an abort, an escaped exception, or an input that runs longer than 10 s (a
// hang, such as the NUL byte that once made the migration runner loop) fails the test, naming the input.
#include <algorithm>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

char current[4096] = "";

extern "C" void on_alarm(int)
{
    const char msg[] = "replay: input ran longer than 10 s (a hang): ";
    (void)!::write(2, msg, sizeof msg - 1);
    (void)!::write(2, current, std::strlen(current));
    (void)!::write(2, "\n", 1);
    ::_exit(1);
}

} // namespace

int main(int argc, char** argv)
{
    std::signal(SIGALRM, on_alarm);
    std::size_t inputs = 0;
    for (int i = 1; i < argc; ++i) {
        std::vector<std::filesystem::path> paths;
        if (std::filesystem::is_directory(argv[i])) {
            for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i]))
                if (e.is_regular_file())
                    paths.push_back(e.path());
        }
        else {
            paths.emplace_back(argv[i]);
        }
        std::sort(paths.begin(), paths.end());
        for (const auto& p : paths) {
            std::ifstream in(p, std::ios::binary);
            const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            std::snprintf(current, sizeof current, "%s", p.c_str());
            std::fprintf(stderr, "replay %s\n", p.c_str());
            ::alarm(10);
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
            ::alarm(0);
            ++inputs;
        }
    }
    std::printf("replayed %zu inputs\n", inputs);
    return inputs > 0 ? 0 : 1;
}
