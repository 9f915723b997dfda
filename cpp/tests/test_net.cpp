// Socket operations through the ring on loopback TCP, over every ring configuration: SOCKET,
// BIND, LISTEN, ACCEPT and CONNECT in flight together, SEND/RECV, SENDMSG/RECVMSG with iovecs,
// SEND_ZC (a result flagged MORE, then the NOTIF completion), the SIOCINQ socket command and
// SHUTDOWN. Each case asserts the SQE layout where it is unusual and compares whole CQEs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "check.hpp"

using namespace iouring;

namespace {

// Opcodes that arrived after 5.19 are skipped (with a line in the output) on older kernels.
bool supports(IoUring& ring, Op op) {
    Probe probe{};
    return ring.probe(probe) >= 0 && probe_supports(probe, op);
}

std::vector<Cqe> submit_and_reap(IoUring& ring, std::uint32_t n) {
    CHECK(ring.submit() >= 0);
    return check::reap(ring, n);
}

// The whole SQE of a send-family operation (SEND, SENDMSG, SEND_ZC) with MSG_NOSIGNAL: `addr`
// is the data (or the msghdr), `len` its size (1 for a msghdr).
Sqe send_sqe(Op op, std::int32_t fd, const void* addr, std::uint32_t len, std::uint64_t user_data) {
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(op);
    want.fd = fd;
    want.addr = address_of(addr);
    want.len = len;
    want.op_flags = MSG_NOSIGNAL;
    want.user_data = user_data;
    return want;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

const sockaddr* as_sockaddr(const sockaddr_in& addr) {
    return reinterpret_cast<const sockaddr*>(&addr);
}

// A connected TCP pair on loopback, made with plain syscalls for the cases that test the data
// path rather than connection setup.
struct TcpPair {
    int client = -1;
    int server = -1;
    TcpPair() {
        int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr = loopback(0);
        socklen_t len = sizeof addr;
        CHECK_EQ(::bind(listener, as_sockaddr(addr), sizeof addr), 0);
        CHECK_EQ(::listen(listener, 1), 0);
        CHECK_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
        client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK_EQ(::connect(client, as_sockaddr(addr), sizeof addr), 0);
        server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        CHECK(server >= 0);
        ::close(listener);
    }
    TcpPair(const TcpPair&) = delete;
    TcpPair& operator=(const TcpPair&) = delete;
    ~TcpPair() {
        ::close(client);
        ::close(server);
    }
};

// SOCKET makes the listener; BIND (addr in addr, addrlen in off) and LISTEN (backlog in len)
// set it up; then ACCEPT and CONNECT go in flight together and both complete.
void test_net_socket_bind_listen_accept_connect(IoUring& ring) {
    Sqe* sqe = check::get_sqe(ring);
    prep_socket(*sqe, 0x1001, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0);
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(Op::SOCKET);
    want.fd = AF_INET;
    want.off = SOCK_STREAM | SOCK_CLOEXEC;
    want.user_data = 0x1001;
    CHECK_SQE(*sqe, want);
    std::vector<Cqe> cqes = submit_and_reap(ring, 1);
    if (!CHECK_EQ(cqes.size(), 1) || !CHECK(cqes[0].res >= 0)) return;
    const int listener = cqes[0].res;

    sockaddr_in addr = loopback(0);
    sqe = check::get_sqe(ring);
    prep_bind(*sqe, 0x1002, listener, as_sockaddr(addr), sizeof addr);
    want = Sqe{};
    want.opcode = static_cast<std::uint8_t>(Op::BIND);
    want.fd = listener;
    want.addr = address_of(&addr);
    want.off = sizeof addr;
    want.user_data = 0x1002;
    CHECK_SQE(*sqe, want);
    sqe->flags |= sqe_flags::IO_LINK;
    sqe = check::get_sqe(ring);
    prep_listen(*sqe, 0x1003, listener, 4);
    CHECK_EQ(sqe->len, 4);
    cqes = submit_and_reap(ring, 2);
    if (CHECK_EQ(cqes.size(), 2)) {
        CHECK_CQE(cqes[0], 0x1002, 0, 0);
        CHECK_CQE(cqes[1], 0x1003, 0, 0);
    }
    socklen_t len = sizeof addr;
    CHECK_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);

    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer;
    sqe = check::get_sqe(ring);
    prep_accept(*sqe, 0x1004, listener, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                SOCK_CLOEXEC);
    want = Sqe{};
    want.opcode = static_cast<std::uint8_t>(Op::ACCEPT);
    want.fd = listener;
    want.addr = address_of(&peer);
    want.off = address_of(&peer_len);  // addr2: where the kernel writes the length back
    want.op_flags = SOCK_CLOEXEC;
    want.user_data = 0x1004;
    CHECK_SQE(*sqe, want);
    sqe = check::get_sqe(ring);
    prep_connect(*sqe, 0x1005, client, as_sockaddr(addr), sizeof addr);
    cqes = submit_and_reap(ring, 2);
    if (CHECK_EQ(cqes.size(), 2)) {
        const Cqe accepted = check::find_cqe(cqes, 0x1004);
        CHECK_CQE(check::find_cqe(cqes, 0x1005), 0x1005, 0, 0);
        if (CHECK(accepted.res >= 0)) {
            CHECK_EQ(peer_len, sizeof peer);
            CHECK_EQ(peer.sin_family, AF_INET);
            CHECK_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
            const char byte = 'q';
            char got = 0;
            CHECK_EQ(::write(client, &byte, 1), 1);
            CHECK_EQ(::read(accepted.res, &got, 1), 1);
            CHECK(got == 'q');
            ::close(accepted.res);
        }
    }
    ::close(client);
    ::close(listener);
}

// SEND and RECV; a RECV on an empty socket waits until data comes, and SIOCINQ (a socket
// command: the count comes back in res) sees what is queued.
void test_net_send_recv(IoUring& ring) {
    TcpPair pair;
    const std::string message = "hello over loopback";
    std::vector<char> in(64, 0);

    Sqe* sqe = check::get_sqe(ring);
    prep_recv(*sqe, 0x2001, pair.server, in.data(), static_cast<std::uint32_t>(in.size()), 0);
    CHECK(ring.submit() >= 0);
    sqe = check::get_sqe(ring);
    prep_send(*sqe, 0x2002, pair.client, message.data(), static_cast<std::uint32_t>(message.size()),
              MSG_NOSIGNAL);
    CHECK_SQE(*sqe, send_sqe(Op::SEND, pair.client, message.data(),
                             static_cast<std::uint32_t>(message.size()), 0x2002));
    std::vector<Cqe> cqes = submit_and_reap(ring, 2);
    if (CHECK_EQ(cqes.size(), 2)) {
        const auto n = static_cast<std::int32_t>(message.size());
        CHECK_CQE(check::find_cqe(cqes, 0x2002), 0x2002, n, 0);
        CHECK_EQ(check::find_cqe(cqes, 0x2001).res, n);
        CHECK(std::string(in.data(), message.size()) == message);
    }

    if (!supports(ring, Op::URING_CMD)) return check::skip("SIOCINQ", "no URING_CMD");
    CHECK_EQ(::write(pair.client, "12345", 5), 5);
    sqe = check::get_sqe(ring);
    prep_cmd_sock(*sqe, 0x2003, socket_cmd::SIOCINQ, pair.server, 0, 0, nullptr, 0);
    CHECK_EQ(sqe->off, socket_cmd::SIOCINQ);  // cmd_op overlays off
    cqes = submit_and_reap(ring, 1);
    // -EOPNOTSUPP: a kernel without socket commands (before 6.7).
    if (CHECK_EQ(cqes.size(), 1) && cqes[0].res != -EOPNOTSUPP) {
        CHECK_CQE(cqes[0], 0x2003, 5, 0);
    }
}

// SENDMSG gathers three iovecs; RECVMSG scatters into two and the kernel writes msg_flags back.
void test_net_sendmsg_recvmsg(IoUring& ring) {
    TcpPair pair;
    std::string a = "scatter ", b = "and ", c = "gather";
    iovec out_iov[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    msghdr out{};
    out.msg_iov = out_iov;
    out.msg_iovlen = 3;
    char first[5] = {}, second[32] = {};
    iovec in_iov[2] = {{first, sizeof first}, {second, sizeof second}};
    msghdr in{};
    in.msg_iov = in_iov;
    in.msg_iovlen = 2;
    in.msg_flags = 0x7fff;  // overwritten by the kernel

    Sqe* sqe = check::get_sqe(ring);
    prep_sendmsg(*sqe, 0x3001, pair.client, &out, MSG_NOSIGNAL);
    CHECK_SQE(*sqe, send_sqe(Op::SENDMSG, pair.client, &out, 1, 0x3001));
    sqe->flags |= sqe_flags::IO_LINK;
    sqe = check::get_sqe(ring);
    prep_recvmsg(*sqe, 0x3002, pair.server, &in, 0);
    CHECK_EQ(sqe->opcode, Op::RECVMSG);
    const auto total = static_cast<std::uint32_t>(a.size() + b.size() + c.size());
    std::vector<Cqe> cqes = submit_and_reap(ring, 2);
    if (CHECK_EQ(cqes.size(), 2)) {
        CHECK_CQE(cqes[0], 0x3001, static_cast<std::int32_t>(total), 0);
        CHECK_CQE(cqes[1], 0x3002, static_cast<std::int32_t>(total), 0);
        const std::string got = std::string(first, sizeof first) +
                                std::string(second, total - sizeof first);
        CHECK(got == a + b + c);
        CHECK_EQ(in.msg_flags, 0);
    }
}

// SEND_ZC: the result comes flagged MORE; a second completion with the same user_data, flagged
// NOTIF, says the kernel is done with the buffer.
void test_net_send_zc(IoUring& ring) {
    if (!supports(ring, Op::SEND_ZC)) return check::skip("test_net_send_zc", "no SEND_ZC");
    TcpPair pair;
    const std::vector<char> out(3000, 'z');
    Sqe* sqe = check::get_sqe(ring);
    prep_send_zc(*sqe, 0x4001, pair.client, out.data(), static_cast<std::uint32_t>(out.size()),
                 MSG_NOSIGNAL, 0);
    CHECK_SQE(*sqe, send_sqe(Op::SEND_ZC, pair.client, out.data(),
                             static_cast<std::uint32_t>(out.size()), 0x4001));
    std::vector<Cqe> cqes = submit_and_reap(ring, 2);
    if (CHECK_EQ(cqes.size(), 2)) {
        CHECK_CQE(cqes[0], 0x4001, 3000, cqe_flags::MORE);
        CHECK_CQE(cqes[1], 0x4001, 0, cqe_flags::NOTIF);
    }
    std::vector<char> in(out.size());
    std::size_t got = 0;
    while (got < in.size()) {
        ssize_t n = ::read(pair.server, in.data() + got, in.size() - got);
        if (!CHECK(n > 0)) break;
        got += static_cast<std::size_t>(n);
    }
    CHECK(in == out);
}

// SHUTDOWN(SHUT_WR): the peer reads end of file.
void test_net_shutdown(IoUring& ring) {
    TcpPair pair;
    Sqe* sqe = check::get_sqe(ring);
    prep_shutdown(*sqe, 0x5001, pair.client, SHUT_WR);
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(Op::SHUTDOWN);
    want.fd = pair.client;
    want.len = SHUT_WR;
    want.user_data = 0x5001;
    CHECK_SQE(*sqe, want);
    std::vector<Cqe> cqes = submit_and_reap(ring, 1);
    if (CHECK_EQ(cqes.size(), 1)) CHECK_CQE(cqes[0], 0x5001, 0, 0);
    char byte = 0;
    CHECK_EQ(::read(pair.server, &byte, 1), 0);
}

}  // namespace

int main() {
    check::require_io_uring();
    {
        IoUring ring;
        if (ring.init(1) == 0 && !(supports(ring, Op::BIND) && supports(ring, Op::LISTEN))) {
            check::skip("test_net_socket_bind_listen_accept_connect", "no BIND/LISTEN (6.11)");
        } else {
            check::run_configs("test_net_socket_bind_listen_accept_connect", 8,
                               test_net_socket_bind_listen_accept_connect);
        }
    }
    check::run_configs("test_net_send_recv", 8, test_net_send_recv);
    check::run_configs("test_net_sendmsg_recvmsg", 8, test_net_sendmsg_recvmsg);
    check::run_configs("test_net_send_zc", 8, test_net_send_zc);
    check::run_configs("test_net_shutdown", 8, test_net_shutdown);
    return check::exit_code();
}
