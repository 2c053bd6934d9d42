/**
 * The runtime every stage runs on, beside the hop's path rather than on it: {@link
 * dev.egret.runtime.VertxRuntime} is the one class that reaches into Vert.x's internal API (the
 * event loops, a context bound to a loop, dispatching on it, the name resolver), and hands the
 * rest of Egret public Vert.x and Netty types. It depends on no other Egret package.
 */
package dev.egret.runtime;
