#include <dbactor/detail/actor_thread.hpp>

#include <pthread.h>

namespace dbactor::detail {
namespace {
thread_local const actor* this_thread_actor = nullptr;
}

void name_this_thread(const char* name) noexcept
{
    pthread_setname_np(pthread_self(), name);
}

void enter_actor_thread(const actor* a, const char* name) noexcept
{
    this_thread_actor = a;
    name_this_thread(name);
}

const actor* current_actor() noexcept
{
    return this_thread_actor;
}

} // namespace dbactor::detail
