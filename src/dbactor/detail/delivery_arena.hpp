// detail::delivery_arena: memory inside a request node for Asio's delivery operation (one allocation a
// request).
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace dbactor::detail {

/// Memory inside a request node for the one operation Asio allocates to deliver the reply to an executor,
/// so that a request costs one allocation in all. Asio frees the operation before it calls the delivery
/// (which may destroy the node), and only one delivery is ever in flight per node.
class delivery_arena
{
public:
    void* allocate(std::size_t n, std::size_t align)
    {
        if (!used_ && n <= sizeof(buf_) && align <= alignof(std::max_align_t)) {
            used_ = true;
            return buf_;
        }
        return ::operator new(n, std::align_val_t(align));
    }
    void deallocate(void* p, std::size_t, std::size_t align) noexcept
    {
        if (p == buf_)
            used_ = false;
        else
            ::operator delete(
                p, std::align_val_t(align)); // unsized: clang 14 has no sized aligned delete by default
    }

private:
    alignas(std::max_align_t) unsigned char buf_[96];
    bool used_ = false;
};

template <class T>
struct arena_allocator
{
    using value_type = T;
    delivery_arena* arena;
    explicit arena_allocator(delivery_arena* a) noexcept : arena(a) {}
    template <class U>
    arena_allocator(const arena_allocator<U>& other) noexcept : arena(other.arena)
    {}
    T* allocate(std::size_t n) { return static_cast<T*>(arena->allocate(n * sizeof(T), alignof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { arena->deallocate(p, n * sizeof(T), alignof(T)); }
    template <class U>
    bool operator==(const arena_allocator<U>& other) const noexcept
    {
        return arena == other.arena;
    }
};

/// Hands `f` to `ex`: dispatch (may run it here) or post.
template <class Executor, class F>
void send_to(const Executor& ex, F&& f, bool inline_ok)
{
    if (inline_ok)
        boost::asio::dispatch(ex, std::forward<F>(f));
    else
        boost::asio::post(ex, std::forward<F>(f));
}

} // namespace dbactor::detail
